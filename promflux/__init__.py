"""promflux: performance metrics for Python services, bridged to InfluxDB.

The distribution installs three packages under this namespace, so that a service's own
``exporter.py`` or ``bridge.py`` can never be shadowed by ours:

- ``promflux.exporter``: instrument a FastAPI/Starlette or aiohttp service (``instrument``);
- ``promflux.bridge``: the scraper that writes percentiles and rates to InfluxDB;
- the modules beside this file: the few pure pieces both sides share (HTTP method and
  route labels, the browser-timings batch format), so neither imports the other.
"""

__version__ = "0.3.0"
