"""The warehouse as a Dagster resource."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from resources.warehouse.store import Warehouse


class WarehouseResource(ConfigurableResource):
    """The SQL warehouse (SQLite file by default, PostgreSQL when a URL is configured).

    Pass a PostgreSQL URL as ``EnvVar("SIGNALWORKS_DATABASE_URL")`` so its password never shows
    in the UI or the logs.
    """

    url: str = Field(description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://...")

    def store(self) -> Warehouse:
        return Warehouse.from_url(self.url)
