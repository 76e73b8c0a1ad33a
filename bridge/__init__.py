"""promflux bridge: scrapes Prometheus /metrics and writes derived performance data to InfluxDB.

It never imports ``exporter``: it works with any Prometheus exposition.
"""
