"""Create, upgrade or downgrade the database schema with Alembic."""

from alembic import command
from alembic.config import Config

from leadstore.db import Database


def upgrade(db: Database, revision: str = "head") -> None:
    with db.engine.begin() as conn:
        command.upgrade(_config(conn), revision)


def downgrade(db: Database, revision: str) -> None:
    with db.engine.begin() as conn:
        command.downgrade(_config(conn), revision)


def _config(connection: object) -> Config:
    config = Config()
    config.set_main_option("script_location", "leadstore:migrations")
    config.attributes["connection"] = connection
    return config
