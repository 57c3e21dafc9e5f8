"""Create or upgrade the database schema with Alembic."""

from alembic import command
from alembic.config import Config

from leadstore.db import Database


def upgrade(db: Database) -> None:
    config = Config()
    config.set_main_option("script_location", "leadstore:migrations")
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
