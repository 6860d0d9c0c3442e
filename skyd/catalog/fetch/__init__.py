"""Rebuild catalog CSVs from the clouds' public pricing APIs (`skyd catalog fetch`).

    from skyd.catalog.fetch import fetch_catalog, FetchEndpoints
    path = await fetch_catalog("azure", Path("catalogs"))

Per cloud: aws (EC2 APIs via aioboto3 + the Price List bulk offer file), gcp
(Cloud Billing Catalog SKUs + Compute Engine type lists over REST), azure (the
Retail Prices API + a shipped VM size table). Every HTTP request has timeouts and
retries 429/5xx with exponential backoff and jitter, honouring Retry-After. A fetch
either writes a complete catalog that the daemon's reader accepts, atomically, or
raises CatalogFetchError and changes nothing.
"""

from __future__ import annotations

from skyd.catalog.fetch.build import FETCHABLE_CLOUDS, fetch_catalog
from skyd.catalog.fetch.cli import main
from skyd.catalog.fetch.endpoints import FetchEndpoints
from skyd.catalog.fetch.errors import CatalogFetchError
from skyd.catalog.fetch.retry import RetryPolicy

__all__ = [
    "FETCHABLE_CLOUDS",
    "CatalogFetchError",
    "FetchEndpoints",
    "RetryPolicy",
    "fetch_catalog",
    "main",
]
