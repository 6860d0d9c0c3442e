"""The AWS adapter's SDK clients: per-region EC2 and SSM clients, errors made skyd's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from skyd.errors import ProviderError
from skyd.providers.aws.config import AwsConfig
from skyd.providers.aws.errors import translate_exception
from skyd.providers.aws.sdk import sdk_session


class Ec2Clients:
    """The per-region EC2 and SSM clients of one AwsConfig."""

    def __init__(self, config: AwsConfig) -> None:
        self.config = config
        self._stack = AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._ssm_clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()
        self._session: Any = None

    async def client(self, region: str, service: str = "ec2") -> Any:
        """The region's `service` client (ec2 or ssm), made once."""
        async with self._lock:
            cache = self._clients if service == "ec2" else self._ssm_clients
            client = cache.get(region)
            if client is None:
                if self._session is None:
                    # Importing the SDK and parsing EC2's service model take about a second:
                    # done in a thread, so the daemon's loop keeps serving meanwhile.
                    self._session = await asyncio.to_thread(sdk_session, self.config.profile)
                from aiobotocore.config import AioConfig  # type: ignore[import-untyped]

                sdk_config = AioConfig(
                    connect_timeout=self.config.connect_timeout_s,
                    read_timeout=self.config.request_timeout_s,
                    retries={
                        "total_max_attempts": self.config.sdk_max_attempts,
                        "mode": "adaptive",
                    },
                )
                try:
                    endpoint = self.config.endpoint_url
                    if service == "ssm":
                        endpoint = self.config.ssm_endpoint_url or endpoint
                    client = await self._stack.enter_async_context(
                        self._session.client(
                            service, region_name=region, endpoint_url=endpoint, config=sdk_config
                        )
                    )
                except Exception as exc:
                    raise translate_exception(exc, region, None) from exc
                cache[region] = client
            return client

    @contextlib.asynccontextmanager
    async def calls(self, region: str, zone: str | None = None) -> AsyncIterator[Any]:
        """An EC2 client whose failures come out as skyd ProviderErrors."""
        client = await self.client(region)
        try:
            yield client
        except ProviderError:
            raise
        except Exception as exc:
            raise translate_exception(exc, region, zone) from exc

    async def describe_instances(self, region: str, filters: list[dict[str, Any]]) -> list[Any]:
        """Every instance DescribeInstances lists for `filters`, all pages read."""
        out: list[Any] = []
        async with self.calls(region) as ec2:
            paginator = ec2.get_paginator("describe_instances")
            async for page in paginator.paginate(Filters=filters):
                for reservation in page.get("Reservations", []):
                    out.extend(reservation.get("Instances", []))
        return out

    async def aclose(self) -> None:
        self._clients.clear()
        await self._stack.aclose()
