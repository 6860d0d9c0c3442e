"""`skyd catalog fetch` as a command: arguments, exit codes, and what it prints."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from skyd.catalog.fetch import main
from skyd.catalog.fetch.cli import build_parser, endpoints_from_args
from skyd.testing.pricing_servers import AzureRetailServer, FaultPlan

FIXTURES = Path(__file__).parents[1] / "fixtures" / "pricing"


@pytest.fixture
def azure_server() -> Iterator[AzureRetailServer]:
    """The fake on its own loop in a thread, since main() runs its own asyncio.run()."""
    items: list[dict[str, Any]] = json.loads((FIXTURES / "azure_retail_items.json").read_text())
    faults = FaultPlan()
    server = AzureRetailServer(items, page_size=6, faults=faults)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(server.close())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(30)
    yield server
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


def test_fetch_prints_the_path_and_exits_zero(
    azure_server: AzureRetailServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["azure", "--out", str(tmp_path), "--azure-prices-url", azure_server.prices_url])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == str(tmp_path / "azure.csv")
    assert (tmp_path / "azure.csv").read_text().startswith("cloud,instance_type,")


def test_failed_fetch_exits_one_with_the_reason(
    azure_server: AzureRetailServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 404 is not retried, so the real clock never has to wait in this test.
    code = main(["azure", "--out", str(tmp_path), "--azure-prices-url", azure_server.url + "/nope"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "skyd catalog fetch azure:" in err and "HTTP 404" in err and "endpoint URL" in err
    assert list(tmp_path.iterdir()) == []


def test_unknown_cloud_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["lambda"])
    assert exit_.value.code == 2
    assert "invalid choice: 'lambda'" in capsys.readouterr().err


def test_secrets_come_from_the_environment_not_argv() -> None:
    args = build_parser().parse_args(
        ["gcp", "--gcp-project", "lab-prices", "--aws-region", "us-west-2"]
    )
    env = {"SKYD_GCP_API_KEY": "k", "SKYD_GCP_ACCESS_TOKEN": "t", "GOOGLE_CLOUD_PROJECT": "other"}
    endpoints = endpoints_from_args(args, env)
    assert (endpoints.gcp_api_key, endpoints.gcp_access_token) == ("k", "t")
    assert endpoints.gcp_project == "lab-prices"
    assert endpoints.aws_regions == ("us-west-2",)
    assert endpoints_from_args(build_parser().parse_args(["gcp"]), env).gcp_project == "other"
