"""Helpers shared by the observability tests and benchmarks: where the files are, how to read them,
and how to pull every query out of the Grafana dashboards and Prometheus rules."""
