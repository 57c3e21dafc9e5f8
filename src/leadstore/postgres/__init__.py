"""PostgreSQL: the engine behind ``leadstore.db.Database`` for a PostgreSQL server."""
