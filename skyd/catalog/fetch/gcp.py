"""Build GCP catalog rows: Cloud Billing Catalog SKUs plus Compute Engine type lists over REST.

Requests (all paginated with `pageToken` / `nextPageToken`):
- GET {billing}/v1/services/6F81-5844-456A/skus?key=… — unit prices (API key, or
  the OAuth token when no key is given);
- GET {compute}/compute/v1/projects/{project}/aggregated/machineTypes and
  …/aggregated/acceleratorTypes — vCPUs, memory, built-in GPUs, and which GPUs each
  zone offers (OAuth bearer token).
How they are combined is in gcp_offers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from skyd.catalog.fetch.endpoints import GCP_COMPUTE_SERVICE_ID, FetchEndpoints
from skyd.catalog.fetch.errors import CatalogFetchError
from skyd.catalog.fetch.gcp_offers import AcceleratorType, MachineType, gcp_rows
from skyd.catalog.fetch.gcp_skus import price_book
from skyd.catalog.fetch.http_json import JsonGetter
from skyd.catalog.fetch.json_shape import typed_field
from skyd.catalog.fetch.rows import CatalogRow

log = logging.getLogger(__name__)

# A guard against a server whose page tokens never end.
MAX_PAGES = 10_000
SKU_PAGE_SIZE = "5000"
COMPUTE_PAGE_SIZE = "500"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
RETIRED_STATES = frozenset({"DEPRECATED", "OBSOLETE", "DELETED"})


async def fetch_gcp_rows(endpoints: FetchEndpoints, http: JsonGetter) -> list[CatalogRow]:
    token, project = await _credentials(endpoints)
    bearer = {"Authorization": f"Bearer {token}"}
    sku_params = {"pageSize": SKU_PAGE_SIZE}
    if endpoints.gcp_api_key:
        sku_params["key"] = endpoints.gcp_api_key
    billing = endpoints.gcp_billing_url.rstrip("/")
    skus = await _all_pages(
        http,
        f"{billing}/v1/services/{GCP_COMPUTE_SERVICE_ID}/skus",
        sku_params,
        {} if endpoints.gcp_api_key else bearer,
        "skus",
        "GCP billing SKUs",
    )
    compute = f"{endpoints.gcp_compute_url.rstrip('/')}/compute/v1/projects/{project}/aggregated"
    page_size = {"maxResults": COMPUTE_PAGE_SIZE}
    machine_pages = await _all_pages(
        http, f"{compute}/machineTypes", page_size, bearer, "items", "GCP machine types"
    )
    accelerator_pages = await _all_pages(
        http, f"{compute}/acceleratorTypes", page_size, bearer, "items", "GCP accelerator types"
    )
    machines = [
        machine_type(entry, zone)
        for zone, entry in _scoped_entries(machine_pages, "machineTypes")
        if not entry.get("isSharedCpu") and not _retired(entry)
    ]
    accelerators = [
        accelerator_type(entry, zone)
        for zone, entry in _scoped_entries(accelerator_pages, "acceleratorTypes")
        if not _retired(entry)
    ]
    rows = gcp_rows(machines, accelerators, price_book(skus))
    log.info(
        "gcp: %d rows from %d SKUs, %d machine types, %d accelerator types",
        len(rows),
        len(skus),
        len(machines),
        len(accelerators),
    )
    return rows


async def _all_pages(
    http: JsonGetter,
    url: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    key: str,
    what: str,
) -> list[Any]:
    """Everything under `key` across pages: a list is concatenated, a dict's values collected."""
    collected: list[Any] = []
    token = ""
    seen: set[str] = set()
    for page in range(1, MAX_PAGES + 1):
        where = f"{what} page {page}"
        query = dict(params)
        if token:
            query["pageToken"] = token
        document = await http.get(url, params=query, headers=headers)
        if key == "skus":
            collected.extend(typed_field(document, key, list, where))
        else:
            collected.extend(typed_field(document, key, dict, where).items())
        token = document.get("nextPageToken") or ""
        if not token:
            return collected
        if token in seen:
            raise CatalogFetchError(f"{where}: nextPageToken {token!r} repeats; pagination loops")
        seen.add(token)
    raise CatalogFetchError(f"{what}: more than {MAX_PAGES} pages; pagination never ends")


def _scoped_entries(pairs: list[Any], list_key: str) -> list[tuple[str, Any]]:
    """(zone, entry) for every entry of an aggregatedList's `items` ("zones/<zone>" → list)."""
    entries = []
    for scope, scoped in pairs:
        if not str(scope).startswith("zones/"):
            continue
        zone = str(scope).removeprefix("zones/")
        # Zones without any type carry only a `warning` (NO_RESULTS_ON_PAGE).
        for entry in typed_field(scoped, list_key, list, f"{scope}", default=[]):
            entries.append((zone, entry))
    return entries


def machine_type(entry: Any, zone: str) -> MachineType:
    where = f"GCP machine type in {zone}"
    name = typed_field(entry, "name", str, where)
    where = f"GCP machine type {name} in {zone}"
    accelerators = tuple(
        (
            typed_field(a, "guestAcceleratorType", str, where),
            typed_field(a, "guestAcceleratorCount", int, where),
        )
        for a in typed_field(entry, "accelerators", list, where, default=[])
    )
    return MachineType(
        name=name,
        zone=zone,
        vcpus=Decimal(typed_field(entry, "guestCpus", int, where)),
        # Compute Engine's "MB" here are MiB.
        memory_gib=Decimal(typed_field(entry, "memoryMb", int, where)) / Decimal(1024),
        accelerators=accelerators,
    )


def accelerator_type(entry: Any, zone: str) -> AcceleratorType:
    where = f"GCP accelerator type in {zone}"
    return AcceleratorType(
        name=typed_field(entry, "name", str, where),
        zone=zone,
        max_per_instance=typed_field(entry, "maximumCardsPerInstance", int, where, default=1),
    )


def _retired(entry: Any) -> bool:
    deprecated = entry.get("deprecated") if isinstance(entry, dict) else None
    return isinstance(deprecated, dict) and deprecated.get("state") in RETIRED_STATES


async def _credentials(endpoints: FetchEndpoints) -> tuple[str, str]:
    """OAuth token and project: given ones, else Application Default Credentials."""
    token, project = endpoints.gcp_access_token, endpoints.gcp_project
    if token and project:
        return token, project
    try:
        adc_token, adc_project = await asyncio.to_thread(_application_default_credentials)
    except Exception as exc:  # google-auth raises several unrelated types
        raise CatalogFetchError(
            "GCP: no access token given and Application Default Credentials failed "
            f"({exc}); run `gcloud auth application-default login` or pass an access "
            "token and project"
        ) from exc
    project = project or adc_project
    if not project:
        raise CatalogFetchError(
            "GCP: no project; pass one (--gcp-project or GOOGLE_CLOUD_PROJECT) to list "
            "machine and accelerator types"
        )
    return token or adc_token, project


def _application_default_credentials() -> tuple[str, str | None]:
    import google.auth
    import google.auth.transport.requests

    credentials, project = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
    return str(credentials.token), project
