"""fetch_catalog: run one cloud's fetcher and replace its catalog file only on full success."""

from __future__ import annotations

import asyncio
import logging
import random
from pathlib import Path

import aiohttp

from skyd.catalog.fetch.endpoints import FetchEndpoints
from skyd.catalog.fetch.errors import CatalogFetchError
from skyd.catalog.fetch.http_json import DEFAULT_TIMEOUT, JsonGetter
from skyd.catalog.fetch.output import replace_catalog
from skyd.catalog.fetch.retry import RetryPolicy
from skyd.catalog.fetch.rows import CatalogRow
from skyd.clock import Clock, SystemClock

log = logging.getLogger(__name__)

FETCHABLE_CLOUDS = ("aws", "gcp", "azure")


async def fetch_catalog(
    cloud: str,
    out_dir: Path,
    endpoints: FetchEndpoints | None = None,
    *,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    rng: random.Random | None = None,
    http_timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
) -> Path:
    """Rebuild `<out_dir>/<cloud>.csv` from the cloud's public pricing APIs; return its path.

    Raises CatalogFetchError (and leaves any existing file byte-for-byte as it was)
    when an API keeps failing, answers something unusable, or the result is not a
    valid catalog. `clock` paces retries (tests pass one that never really waits).
    """
    name = cloud.strip().lower()
    if name not in FETCHABLE_CLOUDS:
        raise CatalogFetchError(
            f"cannot fetch a catalog for cloud {cloud!r}; "
            f"choose one of {', '.join(FETCHABLE_CLOUDS)}"
        )
    endpoints = endpoints or FetchEndpoints()
    clock = clock or SystemClock()
    async with aiohttp.ClientSession(timeout=http_timeout, raise_for_status=False) as session:
        http = JsonGetter(session, clock, retry, rng)
        rows = await _fetch_rows(name, endpoints, http, clock)
    path = Path(out_dir) / f"{name}.csv"
    count = await asyncio.to_thread(replace_catalog, rows, path, name)
    log.info("%s catalog: %d offerings written to %s", name, count, path)
    return path


async def _fetch_rows(
    cloud: str, endpoints: FetchEndpoints, http: JsonGetter, clock: Clock
) -> list[CatalogRow]:
    # Each fetcher is imported only when asked for, so AWS users never load GCP code.
    if cloud == "aws":
        from skyd.catalog.fetch.aws import fetch_aws_rows

        return await fetch_aws_rows(endpoints, http, clock)
    if cloud == "gcp":
        from skyd.catalog.fetch.gcp import fetch_gcp_rows

        return await fetch_gcp_rows(endpoints, http)
    from skyd.catalog.fetch.azure import fetch_azure_rows
    from skyd.catalog.fetch.azure_vm_sizes import shipped_vm_sizes

    return await fetch_azure_rows(endpoints, http, shipped_vm_sizes())
