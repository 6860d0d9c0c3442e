"""`skyctl check`: one cheap authenticated call per configured cloud, through the daemon's
API, enabled or disabled with the reason and the fix; `--json`; exit 1 when a configured
cloud cannot be used."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from skyctl.__main__ import main as skyctl
from skyd.clock import VirtualClock
from skyd.providers.azure import AzureConfig, AzureProvider
from skyd.providers.checks import check_clouds
from skyd.testing.daemon import daemon_thread
from skyd.testing.ec2_fixtures import settings_on_ec2
from skyd.testing.fake_azure import ArmFault, FakeAzure, StaticTokenCredential
from skyd.testing.fake_gce import FakeGce, GceFault
from skyd.testing.moto_ec2 import MotoEc2


async def test_check_reports_each_cloud_with_reason_and_fix(
    ec2: MotoEc2, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gce = FakeGce()
    await gce.start()
    # GCE answers the check call as it does a service account without Compute access.
    gce.add_fault(GceFault("aggregatedList", status=403, reason="forbidden", times=None))
    settings = settings_on_ec2(tmp_path, ec2)
    settings.gcp = {
        "enabled": True,
        "project": "lab",
        "endpoint": gce.endpoint,
        "anonymous": True,
        "retry_deadline_s": 1.0,
    }
    try:
        async with daemon_thread(settings) as daemon:
            code = await asyncio.to_thread(
                skyctl, ["--socket", str(daemon.socket_path), "check", "--json"]
            )
            rows = {r["cloud"]: r for r in json.loads(capsys.readouterr().out)}
            text_code = await asyncio.to_thread(
                skyctl, ["--socket", str(daemon.socket_path), "check"]
            )
            text = capsys.readouterr().out
    finally:
        await gce.stop()
    assert code == text_code == 1  # a configured cloud cannot be used
    assert rows["aws"]["enabled"] and "DescribeAvailabilityZones" in rows["aws"]["reason"]
    assert ec2.calls["DescribeAvailabilityZones"] >= 1
    assert not rows["gcp"]["enabled"] and rows["gcp"]["configured"]
    assert "403" in rows["gcp"]["reason"] and "gcp.credentials_file" in rows["gcp"]["fix"]
    assert rows["azure"] == {
        "cloud": "azure",
        "configured": False,
        "enabled": False,
        "reason": "not enabled in the daemon's config",
        "fix": "add [azure] with enabled = true to the config file and restart skyd",
    }
    assert "aws: enabled" in text and "gcp: disabled" in text and "    fix: " in text


async def test_azure_check_is_one_authenticated_list(tmp_path: Path) -> None:
    fake = FakeAzure(tmp_path)
    await fake.start()
    provider = AzureProvider(
        AzureConfig(
            subscription_id="00000000-0000-0000-0000-000000000001",
            resource_group="lab",
            base_url=fake.base_url,
            ca_file=str(fake.ca_file),
            retry_total=0,
        ),
        credential=StaticTokenCredential(),
        clock=VirtualClock(),
    )
    try:
        [_, _, azure] = await check_clouds({"azure": provider})
        assert azure.enabled and fake.calls["vm.list"] == 1
        fake.add_fault(ArmFault("vm.list", status=401, code="InvalidAuthenticationToken"))
        [_, _, azure] = await check_clouds({"azure": provider})
        assert not azure.enabled and "InvalidAuthenticationToken" in azure.reason
        assert "az login" in azure.fix
    finally:
        await provider.aclose()
        await fake.stop()
