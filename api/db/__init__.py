"""PostgreSQL: the schema, the connection pool and the migrations."""
