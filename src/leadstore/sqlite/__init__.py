"""SQLite: the engine behind ``leadstore.db.Database`` for a database file. Its writes take turns
at one writer; a server's bulk writes run in a writer process of their own. This package's
``__init__`` imports nothing, so that the writer process starts without SQLAlchemy."""
