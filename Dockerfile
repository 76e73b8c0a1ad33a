# One image for the bridge and the example services (the compose file picks the command).
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md LICENSE ./
COPY promflux ./promflux
COPY exporter ./exporter
COPY bridge ./bridge
RUN pip install ".[bridge,fastapi,aiohttp]" "uvicorn>=0.22"
COPY examples ./examples
RUN useradd --system --home /app promflux && mkdir -p /var/lib/promflux \
    && chown promflux /var/lib/promflux
USER promflux
EXPOSE 9108
CMD ["promflux-bridge", "--config", "/app/examples/bridge.yml"]
