"""`fetch_catalog("gcp")` end to end against the fake Billing Catalog and Compute Engine APIs."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from skyd.catalog import Catalog
from skyd.catalog.fetch import CatalogFetchError, FetchEndpoints, RetryPolicy, fetch_catalog
from skyd.catalog.fetch.gcp_skus import gpu_words, price_book
from skyd.testing.pricing_servers import FaultPlan, GcpPricingServer, InstantClock

FIXTURES = Path(__file__).parents[1] / "fixtures" / "pricing"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def gcp_server(page_size: int = 5, faults: FaultPlan | None = None) -> GcpPricingServer:
    return GcpPricingServer(
        fixture("gcp_skus.json"),
        fixture("gcp_machine_types.json"),
        fixture("gcp_accelerator_types.json"),
        page_size=page_size,
        faults=faults,
    )


def endpoints(server: GcpPricingServer) -> FetchEndpoints:
    return FetchEndpoints(
        gcp_billing_url=server.url,
        gcp_compute_url=server.url,
        gcp_api_key=server.api_key,
        gcp_access_token=server.access_token,
        gcp_project=server.project,
    )


def read_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(newline="") as src:
        return {(r["instance_type"], r["zone"]): r for r in csv.DictReader(src)}


async def test_fetch_combines_hosts_and_gpus_into_a_loadable_catalog(tmp_path: Path) -> None:
    async with gcp_server() as server:
        path = await fetch_catalog("gcp", tmp_path, endpoints(server), clock=InstantClock())
    rows = read_rows(path)

    # n1-standard-8: 8 × core + 30 GiB × RAM, in us-central1 (Americas SKUs).
    host = rows[("n1-standard-8", "us-central1-a")]
    assert Decimal(host["price"]) == 8 * Decimal("0.031611") + 30 * Decimal("0.004237")
    assert Decimal(host["spot_price"]) == 8 * Decimal("0.006655") + 30 * Decimal("0.000892")
    assert (host["region"], host["accelerator_name"], host["vcpus"]) == ("us-central1", "", "8")

    # Attached GPUs: named <host>+<GPU>x<count>, priced host + GPU × count.
    t4x2 = rows[("n1-standard-8+T4x2", "us-central1-a")]
    assert (t4x2["accelerator_name"], t4x2["accelerator_count"]) == ("T4", "2")
    assert Decimal(t4x2["price"]) == Decimal(host["price"]) + 2 * Decimal("0.35")
    assert Decimal(t4x2["spot_price"]) == Decimal(host["spot_price"]) + 2 * Decimal("0.14")

    # Google's vCPU limit: a 16-vCPU N1 cannot carry one V100 (max 12), but two.
    assert ("n1-standard-16+V100x1", "us-central1-a") not in rows
    assert ("n1-standard-16+V100x2", "us-central1-a") in rows
    # T4 allows at most 4 per instance in the zone.
    assert ("n1-standard-8+T4x8", "us-central1-a") not in rows

    # Built-in GPUs: host (A2 core/RAM) + A100, one offering under the machine type name.
    a2 = rows[("a2-highgpu-1g", "us-central1-a")]
    assert (a2["accelerator_name"], a2["accelerator_count"], a2["memory_gib"]) == (
        "A100",
        "1",
        "85",
    )
    assert Decimal(a2["price"]) == (
        12 * Decimal("0.031611") + 85 * Decimal("0.004237") + Decimal("2.933908")
    )
    # G2 has no spot SKUs in the fixture: on demand only.
    g2 = rows[("g2-standard-8", "us-central1-a")]
    assert (g2["accelerator_name"], g2["spot_price"]) == ("L4", "")

    # europe-west4 prices N1 itself but has no T4 SKU: the host alone is offered.
    assert ("n1-standard-8", "europe-west4-a") in rows
    assert not any(k[1] == "europe-west4-a" and "+" in k[0] for k in rows)
    # Shared-core and deprecated types are not offered.
    assert not any(k[0] in ("e2-micro", "n1-megamem-96") for k in rows)
    # E2's first pricing tier is a free allowance; the real rate is the next tier.
    e2 = rows[("e2-standard-2", "us-central1-a")]
    assert Decimal(e2["price"]) == 2 * Decimal("0.021811") + 8 * Decimal("0.002923")

    catalog = Catalog.load(tmp_path, clouds=["gcp"])
    assert len(catalog.offers) == len(rows)


async def test_every_listing_is_paginated_and_authenticated(tmp_path: Path) -> None:
    async with gcp_server(page_size=4) as server:
        await fetch_catalog("gcp", tmp_path, endpoints(server), clock=InstantClock())
    skus = server.requests_for("skus")
    assert len(skus) == -(-len(fixture("gcp_skus.json")) // 4)
    assert all(r.query["key"] == server.api_key for r in skus)
    assert "pageToken" not in skus[0].query and all("pageToken" in r.query for r in skus[1:])
    machine_count = sum(len(v) for v in fixture("gcp_machine_types.json").values())
    machines = server.requests_for("machineTypes")
    assert len(machines) == -(-machine_count // 4)
    assert all(r.authorization == f"Bearer {server.access_token}" for r in machines)
    assert len(server.requests_for("acceleratorTypes")) == 2


async def test_throttled_sku_page_is_retried(tmp_path: Path) -> None:
    faults = FaultPlan()
    faults.throttle(times=2, status=429, retry_after="5", route="skus", page=3)
    clock = InstantClock()
    async with gcp_server(faults=faults) as server:
        await fetch_catalog("gcp", tmp_path, endpoints(server), clock=clock)
    assert len(clock.sleeps) == 2 and all(5.0 <= s <= 6.0 for s in clock.sleeps)
    assert (tmp_path / "gcp.csv").is_file()


@pytest.mark.parametrize("route", ["skus", "machineTypes", "acceleratorTypes"])
async def test_failure_on_a_later_page_keeps_the_old_catalog(tmp_path: Path, route: str) -> None:
    old = tmp_path / "gcp.csv"
    old.write_text("previous catalog, kept verbatim\n")
    before = old.read_bytes()
    faults = FaultPlan()
    faults.server_error(status=500, route=route, page=2)
    async with gcp_server(page_size=2, faults=faults) as server:
        with pytest.raises(CatalogFetchError, match="HTTP 500"):
            await fetch_catalog(
                "gcp",
                tmp_path,
                endpoints(server),
                clock=InstantClock(),
                retry=RetryPolicy(max_attempts=2),
            )
    assert old.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["gcp.csv"]


async def test_bad_credentials_fail_without_retrying(tmp_path: Path) -> None:
    async with gcp_server() as server:
        wrong = FetchEndpoints(
            gcp_billing_url=server.url,
            gcp_compute_url=server.url,
            gcp_api_key="wrong-key",
            gcp_access_token="wrong-token",
            gcp_project=server.project,
        )
        with pytest.raises(CatalogFetchError, match=r"HTTP 403.*credentials or API key") as failure:
            await fetch_catalog("gcp", tmp_path, wrong, clock=InstantClock())
    assert len(server.requests) == 1
    # The key travels in the query string, which never reaches an error message.
    assert "wrong-key" not in str(failure.value)


def test_sku_descriptions_map_to_the_right_unit_prices() -> None:
    book = price_book(fixture("gcp_skus.json"))
    assert book.core[("n1", "us-central1", False)] == Decimal("0.031611")
    assert book.core[("n1", "us-central1", True)] == Decimal("0.006655")
    assert book.ram[("n1", "europe-west4", False)] == Decimal("0.004664")
    # Custom, sole-tenant and committed-use SKUs never become a family price.
    assert ("custom", "us-central1", False) not in book.core
    assert book.core.keys() <= {
        (family, region, spot)
        for family in ("n1", "n2", "a2", "g2", "e2")
        for region in ("us-central1", "us-east1", "europe-west4")
        for spot in (False, True)
    }
    assert book.gpu_price("nvidia-tesla-t4", "us-east1", True) == Decimal("0.14")
    assert book.gpu_price("nvidia-tesla-a100", "us-east1", False) is None
    assert gpu_words("Nvidia Tesla A100 80GB") == gpu_words("nvidia-a100-80gb")
    assert gpu_words("Nvidia Tesla A100") != gpu_words("nvidia-a100-80gb")


@pytest.mark.parametrize(
    ("description", "key"),
    [
        ("N2D AMD Instance Core running in Americas", ("n2d", "Core")),
        ("Compute optimized Core running in Americas", ("c2", "Core")),
        ("Spot Preemptible Memory-optimized Instance Ram running in Americas", ("m1", "Ram")),
        ("T2A Arm Instance Ram running in Americas", ("t2a", "Ram")),
        ("N2 Custom Instance Core running in Americas", None),
        ("N1 Sole Tenancy Instance Ram running in Americas", None),
    ],
)
def test_family_descriptions_beyond_the_fixture(
    description: str, key: tuple[str, str] | None
) -> None:
    sku = fixture("gcp_skus.json")[0]  # an N1 core SKU, relabelled
    sku["description"] = description
    sku["category"]["usageType"] = "Preemptible" if "Preemptible" in description else "OnDemand"
    if key is not None and key[1] == "Ram":
        sku["pricingInfo"][0]["pricingExpression"]["usageUnit"] = "GiBy.h"
    book = price_book([sku])
    found = {(f, "Core") for f, _, _ in book.core} | {(f, "Ram") for f, _, _ in book.ram}
    assert found == ({key} if key else set())


def test_a_sku_priced_in_another_currency_is_refused() -> None:
    sku = fixture("gcp_skus.json")[0]
    rate = sku["pricingInfo"][0]["pricingExpression"]["tieredRates"][0]
    rate["unitPrice"]["currencyCode"] = "EUR"
    with pytest.raises(CatalogFetchError, match="EUR"):
        price_book([sku])


async def test_missing_credentials_say_how_to_provide_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No token given and no Application Default Credentials to fall back on.
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    async with gcp_server() as server:
        bare = FetchEndpoints(gcp_billing_url=server.url, gcp_compute_url=server.url)
        with pytest.raises(CatalogFetchError, match="application-default login"):
            await fetch_catalog("gcp", tmp_path / "out", bare, clock=InstantClock())
    assert server.requests == []
