"""The fakes refuse the firewall rules, security rules and disk types the real clouds refuse:
GCE firewalls (over HTTP, in GCE's error shape) and disk types, EC2's EBS volume rules (in
front of moto), Azure NSG rules and OS disk types — and accept what skyd sends."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from skyd.providers.gcp.firewalls import rule_body
from skyd.testing.azure_schema import api_version, check_put
from skyd.testing.ebs_rules import check_block_devices
from skyd.testing.fake_gce import FakeGce
from skyd.testing.gce_schema import check_disk_type


async def _post(fake: FakeGce, body: dict[str, Any]) -> tuple[int, Any]:
    url = f"{fake.endpoint}/compute/v1/projects/lab/global/firewalls"
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        return response.status, await response.json()


def _camel(body: dict[str, Any]) -> dict[str, Any]:
    """rule_body's SDK field names as they go on the wire."""
    names = {"source_ranges": "sourceRanges", "target_tags": "targetTags"}
    out = {names.get(k, k): v for k, v in body.items()}
    out["allowed"] = [{"IPProtocol": "tcp", "ports": r["ports"]} for r in body["allowed"]]
    return out


async def test_gce_firewall_rules() -> None:
    fake = FakeGce()
    await fake.start()
    try:
        good = _camel(rule_body("skyd-1-ab-ports", "global/networks/default", ["8080"], {}))
        assert (await _post(fake, good))[0] == 200
        again = await _post(fake, good)
        assert again[0] == 409 and again[1]["error"]["errors"][0]["reason"] == "alreadyExists"
        for change, says in (
            ({"allowed": [{"IPProtocol": "tcp", "ports": ["70000"]}]}, "Invalid port"),
            ({"allowed": [{"IPProtocol": "tcpp", "ports": ["80"]}]}, "Invalid IP protocol"),
            ({"allowed": [{"IPProtocol": "tcp", "prots": ["80"]}]}, 'Unknown name "prots"'),
            ({"sourceRanges": ["0.0.0.0/33"]}, "Invalid IPCidrRange"),
            ({"targetTags": ["Not_A_Tag"]}, "targetTags[0]"),
            ({"denied": [{"IPProtocol": "tcp"}]}, "Exactly one of allowed or denied"),
            ({"network": "global/networks/nope"}, "networks/nope' was not found"),
            ({"direction": "SIDEWAYS"}, "Firewall.Direction"),
        ):
            status, answer = await _post(fake, {**good, "name": "other", **change})
            assert status in (400, 404), change
            assert says in answer["error"]["message"], (change, answer)
        assert list(fake.firewalls.rules) == [("lab", "skyd-1-ab-ports")]
    finally:
        await fake.stop()


@pytest.mark.parametrize(
    ("disk_type", "machine", "says"),
    [
        ("pd-ssd", "n2-standard-8", None),
        ("pd-balanced", "n1-standard-4", None),
        ("pd-fast", "n2-standard-8", "The referenced diskType resource cannot be found."),
        ("pd-extreme", "n2-standard-8", "[pd-extreme] features are not compatible"),
        ("pd-extreme", "n2-standard-64", None),
    ],
)
def test_gce_disk_types(disk_type: str, machine: str, says: str | None) -> None:
    params = {"diskType": f"zones/us-central1-a/diskTypes/{disk_type}"}
    error = check_disk_type(params, 0, "us-central1-a", machine)
    if says is None:
        assert error is None
    else:
        assert error is not None and says in error.message


def _ebs(**fields: str) -> dict[str, str]:
    form = {"BlockDeviceMapping.1.DeviceName": "/dev/sda1"}
    form.update({f"BlockDeviceMapping.1.Ebs.{k}": v for k, v in fields.items()})
    return form


def test_ebs_rules() -> None:
    assert check_block_devices(_ebs(VolumeType="gp3", Iops="6000", Throughput="500")) is None
    assert check_block_devices(_ebs(VolumeType="io2", Iops="20000", VolumeSize="256")) is None
    refused = {
        "gp9": _ebs(VolumeType="gp9"),
        "io2 without iops": _ebs(VolumeType="io2"),
        "iops on gp2": _ebs(VolumeType="gp2", Iops="3000"),
        "gp3 iops too high": _ebs(VolumeType="gp3", Iops="20000"),
        "throughput on io2": _ebs(VolumeType="io2", Iops="1000", Throughput="200"),
        "throughput over iops/4": _ebs(VolumeType="gp3", Iops="3000", Throughput="1000"),
        "io2 ratio": _ebs(VolumeType="io2", Iops="20000", VolumeSize="8"),
    }
    for what, form in refused.items():
        assert check_block_devices(form) is not None, what


def _nsg(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"location": "eastus", "properties": {"securityRules": list(rules)}}


def _rule(name: str, priority: int, port: str) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationPortRange": port,
            "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "*",
            "access": "Allow",
            "priority": priority,
            "direction": "Inbound",
        },
    }


def test_azure_nsg_rules_and_os_disks() -> None:
    version = api_version("Microsoft.Network")

    def put(body: dict[str, Any]) -> str | None:
        error = check_put("Microsoft.Network", "networkSecurityGroups", body, version, True)
        return error.code if error else None

    assert put(_nsg(_rule("a", 1000, "22"), _rule("b", 1010, "9000-9001"))) is None
    assert put(_nsg(_rule("a", 50, "22"))) == "SecurityRuleInvalidPriority"
    assert put(_nsg(_rule("a", 1000, "22"), _rule("b", 1000, "80"))) == "SecurityRuleConflict"
    assert put(_nsg(_rule("a", 1000, "70000"))) == "SecurityRuleInvalidPortRange"
    assert put(_nsg(_rule("a", 1000, "90-80"))) == "SecurityRuleInvalidPortRange"
    compute = api_version("Microsoft.Compute")

    def vm(size: str, disk: str) -> str | None:
        body = {
            "location": "eastus",
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {
                    "osDisk": {
                        "createOption": "FromImage",
                        "managedDisk": {"storageAccountType": disk},
                    }
                },
            },
        }
        error = check_put("Microsoft.Compute", "virtualMachines", body, compute, True)
        return error.code if error else None

    assert vm("Standard_D4s_v5", "Premium_LRS") is None
    assert vm("Standard_D4_v5", "Premium_LRS") == "BadRequest"  # no premium storage
    assert vm("Standard_D4s_v5", "UltraSSD_LRS") == "InvalidParameter"  # not an OS disk
    assert vm("Standard_D4s_v5", "Fast_LRS") == "InvalidParameter"  # not a type at all
