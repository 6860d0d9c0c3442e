"""pytest fixtures for a fake EC2 (moto's server behind skyd's fault proxy) and a daemon on it.

A plugin (tests/conftest.py loads it), so every test of the AWS path sets EC2 up one way: one
moto server per test module (starting it is the slow part), its state reset and a fresh fault
proxy per test, and botocore's credential chain seeing the fake's keys only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from skyd.config import Settings
from skyd.testing.daemon import settings_for_tests
from skyd.testing.fake_clouds import AWS_TEST_CREDENTIALS
from skyd.testing.fake_vm import FakeVmHost
from skyd.testing.moto_ec2 import MotoEc2, MotoServerThread

AWS_TEST_IMAGE = "ami-12c6146b"  # an Ubuntu AMI moto knows: its login user is `ubuntu`


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServerThread]:
    with pytest.MonkeyPatch.context() as env:
        # Moto's stock AMI list makes every backend reset cost about a second; no test needs
        # it (moto accepts any image id).
        env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        server = MotoServerThread()
        server.start()
        yield server
        server.stop()


@pytest.fixture
def aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The adapter reads the standard chain: only the fake's keys, never a developer's profile."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for name, value in AWS_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@asynccontextmanager
async def fresh_ec2(
    server: MotoServerThread,
    *,
    machines: FakeVmHost | None = None,
    image_users: Mapping[str, str] | None = None,
) -> AsyncIterator[MotoEc2]:
    """moto reset (its state is process-wide) behind a new fault proxy, stopped on exit."""
    server.reset()
    proxy = MotoEc2(server, machines=machines, image_users=image_users)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()


@pytest.fixture
async def ec2(moto_server: MotoServerThread, aws_test_credentials: None) -> AsyncIterator[MotoEc2]:
    async with fresh_ec2(moto_server) as proxy:
        yield proxy


def settings_on_ec2(root: Path, ec2: MotoEc2, **aws: Any) -> Settings:
    """Test settings of a daemon whose [aws] is the fake (`aws` adds to or overrides the table).

    The spot price poller stays off: it would call the fake on its own schedule.
    """
    settings = settings_for_tests(root)
    settings.aws = {
        "enabled": True,
        "regions": ["us-east-1"],
        "endpoint_url": ec2.endpoint_url,
        "default_image_id": AWS_TEST_IMAGE,
        **aws,
    }
    settings.market.poll_aws_spot_prices = False
    return settings
