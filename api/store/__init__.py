"""Queries, one module per table group. Each takes the ``Db`` adapter and returns plain rows."""
