"""The description of the Grafana dashboards that build_dashboards.py writes out as JSON.

vocabulary holds what a dashboard is written in (queries, panels, rows, variables), panel and
dashboard turn that into Grafana's JSON, annotations holds the deploy and rollback annotations,
and each of the other modules describes one dashboard.
"""
