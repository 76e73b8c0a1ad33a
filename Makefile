# promflux: `make test` sets up everything it needs on a fresh Debian machine and runs the suite.
PYTHON ?= python3
VENV := .venv
OLD := .venv-old
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

# The oldest framework versions pyproject allows; the compat tests run against these too.
OLD_PINS := fastapi==0.100.0 starlette==0.27.0 aiohttp==3.9.0 yarl==1.9.4 prometheus-client==0.17.0 \
	uvicorn==0.22.0 websockets "httpx<0.28" aioprometheus==23.3.0 pytest pytest-timeout hypothesis

.PHONY: test lint canary system-deps venv venv-old bench demo clean

# The bridge's hot path has two cores, the compiled one (bridge/_native.c) and the pure-Python
# reference: the whole suite runs with the compiled one, then the tests of what the two cores
# share (parsing, deriving, the bridge end to end) run again with PROMFLUX_PURE=1.
PURE_TESTS := tests/test_bridge_native.py tests/test_bridge_exposition.py \
	tests/test_bridge_exposition_conformance.py tests/test_bridge_derive.py \
	tests/test_bridge_math.py tests/test_bridge_series_identity.py tests/test_bridge_presets.py \
	tests/test_bridge_bucket_fields.py tests/test_bridge_bad_answers.py \
	tests/test_bridge_alerts.py tests/test_bridge_lineprotocol.py tests/test_bridge_window_packing.py \
	tests/test_bridge_e2e.py

test: system-deps venv venv-old lint canary
	$(OLD)/bin/python -m pytest -q -m compat tests/test_exporter_*.py; rc=$$?; [ $$rc -eq 5 ] || [ $$rc -eq 0 ] || exit $$rc
	$(VENV)/bin/python -m pytest -q tests; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc
	PROMFLUX_PURE=1 $(VENV)/bin/python -m pytest -q $(PURE_TESTS)

# ruff everywhere; mypy --strict (pyproject) on the three packages.
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy exporter bridge promflux

# Debian's influxdb (1.6.7) for the bridge tests, openssl for the TLS test certificates,
# nginx to put InfluxDB behind TLS,
# chromium for the browser tests, docker-compose to validate docker-compose.yml, npm for the
# dashboards' type check against @grafana/schema, prometheus-alertmanager for alert delivery,
# prometheus for promtool (the parser's reference), gcc and the Python headers for the
# bridge's compiled core; installed only when missing.
system-deps:
	@missing=""; \
	command -v gcc >/dev/null 2>&1 || missing="$$missing gcc"; \
	$(PYTHON) -c "import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_path('include'), 'Python.h')))" || missing="$$missing python3-dev"; \
	command -v influxd >/dev/null 2>&1 || missing="$$missing influxdb"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v nginx >/dev/null 2>&1 || missing="$$missing nginx-light"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || \
		missing="$$missing prometheus-alertmanager"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; fi

# The upgrade canary: the main suite runs on the newest releases of the libraries whose
# internals the exporter uses (resolved now, not pinned); the compat run keeps the oldest.
CANARY := fastapi starlette aiohttp prometheus-client aioprometheus
canary: venv
	$(VENV)/bin/pip install -q --upgrade $(CANARY)
	@$(VENV)/bin/python -c "import importlib.metadata as m; print('newest releases under test:', ', '.join(p + ' ' + m.version(p) for p in '$(CANARY)'.split()))"

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml setup.py bridge/_native.c
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev,bridge,aioprometheus]'
	touch $@

venv-old: $(OLD)/.installed
$(OLD)/.installed: pyproject.toml Makefile
	test -x $(OLD)/bin/python || $(PYTHON) -m venv $(OLD)
	$(OLD)/bin/pip install -q --upgrade pip
	$(OLD)/bin/pip install -q $(OLD_PINS)
	$(OLD)/bin/pip install -q --no-deps -e .
	$(OLD)/bin/pip install -q psutil
	touch $@

bench: venv
	@command -v wrk >/dev/null 2>&1 && command -v valgrind >/dev/null 2>&1 && \
		command -v nginx >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || { \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y wrk valgrind \
		nginx-light prometheus; }
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(VENV)/bin/python bench/exporter_overhead.py
	$(VENV)/bin/python bench/bridge_throughput.py
	$(VENV)/bin/python bench/bridge_e2e.py
	$(VENV)/bin/python bench/bridge_vs_prometheus.py

# The README's first command: the whole system on this machine, without Docker.
demo: venv
	@command -v influxd >/dev/null 2>&1 || { \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y influxdb; }
	$(VENV)/bin/python -m examples.demo

clean:
	rm -rf $(VENV) $(OLD) *.egg-info .pytest_cache .ruff_cache .demo build bridge/_native.*.so
