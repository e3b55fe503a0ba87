"""Alembic environment: runs on the connection handed over by :mod:`resources.warehouse.migrate`."""

from __future__ import annotations

from alembic import context

from resources.warehouse.migrate import VERSION_TABLE
from resources.warehouse.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # command-line use: alembic -x url=...
    from sqlalchemy import create_engine

    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the warehouse URL: alembic -x url=postgresql+psycopg://... upgrade head")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True,
                          version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                      version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()
