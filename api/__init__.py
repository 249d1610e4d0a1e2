"""The shop API: a Starlette service on PostgreSQL and Redis."""

__version__ = "0.1.0"
