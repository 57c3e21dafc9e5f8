from alembic import context
from sqlalchemy import create_engine

import leadstore.models  # noqa: F401  (registers every table on the metadata)
from leadstore.db import Base

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=Base.metadata,
        render_as_batch=True,
        # Custom mx_ columns and their indexes are made at run time; autogenerate must not drop them.
        include_object=lambda obj, name, type_, reflected, compare_to: (
            not (reflected and compare_to is None and (name or "").startswith(("mx_", "uq_leads_mx_")))
        ),
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
