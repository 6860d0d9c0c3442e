"""The Azure adapter's Resource Manager connection: compute client, ARM REST, long operations."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from skyd.clock import Clock
from skyd.errors import TransientError
from skyd.providers.azure.bodies import StaticToken
from skyd.providers.azure.config import AzureConfig
from skyd.providers.azure.errors import CLOUD, translate_error_code


def as_json(model: Any) -> dict[str, Any]:
    """An SDK model (or a body already decoded) as the JSON dict ARM sent."""
    if isinstance(model, dict):
        return model
    as_dict = getattr(model, "as_dict", None)
    result: dict[str, Any] = as_dict() if as_dict is not None else dict(model)
    return result


class ArmConnection:
    """One subscription's compute client and ARM REST pipeline, built on first use and closed
    together (with the credential, when this connection made it)."""

    def __init__(self, config: AzureConfig, credential: Any, clock: Clock) -> None:
        self.config = config
        self._credential = credential
        self._owns_credential = credential is None
        self._clock = clock
        self._compute: Any = None
        self._session: Any = None  # our own aiohttp session when trusting an extra CA
        self._lock = asyncio.Lock()

    async def compute(self) -> Any:
        """The azure-mgmt-compute async client (its pollers speak Azure-AsyncOperation)."""
        async with self._lock:
            if self._compute is None:
                # The SDK takes about a second to import: keep that off the daemon's loop.
                await asyncio.to_thread(importlib.import_module, "azure.mgmt.compute.aio")
                from azure.mgmt.compute.aio import ComputeManagementClient

                if self._credential is None and self.config.static_token:
                    self._credential = StaticToken(self.config.static_token)
                if self._credential is None:
                    await asyncio.to_thread(importlib.import_module, "azure.identity.aio")
                    from azure.identity.aio import DefaultAzureCredential

                    self._credential = DefaultAzureCredential()
                kwargs: dict[str, Any] = {
                    "retry_total": self.config.retry_total,
                    "retry_backoff_factor": self.config.retry_backoff_factor,
                    "retry_backoff_max": self.config.retry_backoff_max_s,
                    "polling_interval": self.config.poll_interval_s,
                    "connection_timeout": self.config.connect_timeout_s,
                    "read_timeout": self.config.request_timeout_s,
                }
                if self.config.ca_file:
                    kwargs["transport"] = self._transport_trusting(self.config.ca_file)
                if self.config.base_url:
                    kwargs["base_url"] = self.config.base_url
                self._compute = ComputeManagementClient(
                    self._credential, self.config.subscription_id, **kwargs
                )
        return self._compute

    def _transport_trusting(self, ca_file: str) -> Any:
        """An HTTP transport that trusts `ca_file` with one TLS context for every request.

        azure-core's `connection_verify=<path>` builds a fresh SSL context per request, which
        defeats connection pooling: every ARM call would pay a new TLS handshake.
        """
        import ssl

        import aiohttp
        from azure.core.pipeline.transport import AioHttpTransport

        context = ssl.create_default_context(cafile=ca_file)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        return AioHttpTransport(
            session=self._session,
            session_owner=False,
            connection_timeout=self.config.connect_timeout_s,
            read_timeout=self.config.request_timeout_s,
        )

    async def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One ARM REST call through the SDK's pipeline; returns the response."""
        from azure.core.rest import HttpRequest

        client = await self.compute()
        request = HttpRequest(
            method,
            path,
            params={"api-version": self.config.network_api_version},
            json=dict(body) if body is not None else None,
        )
        # Not streamed: the pipeline has read the body already.
        return await client.send_request(request)

    async def long_running(
        self,
        method: str,
        path: str,
        region: str,
        body: Mapping[str, Any] | None = None,
        needs: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any] | None:
        """PUT/DELETE with ARM's long-running-operation protocol, polled to the end.

        Returns the resource body (PUT) or None (DELETE, or already gone). The final GET
        is skipped when `needs` says the PUT's own answer already holds what the caller uses.
        """
        response = await self.request(method, path, body)
        if method == "DELETE" and response.status_code in (204, 404):
            return None
        self.raise_for(response, region)
        initial: dict[str, Any] = response.json() if method == "PUT" else {}
        poll_url = response.headers.get("Azure-AsyncOperation")
        deadline = self._clock.now() + self.config.operation_timeout_s
        while poll_url:
            await self._clock.sleep(self._retry_after(response))
            if self._clock.now() > deadline:
                raise TransientError(
                    f"azure: {method} {path} not done after {self.config.operation_timeout_s}s",
                    scope=f"{CLOUD}/{region}",
                )
            from azure.core.rest import HttpRequest

            client = await self.compute()
            response = await client.send_request(HttpRequest("GET", poll_url))
            self.raise_for(response, region)
            status = response.json().get("status", "")
            if status == "Succeeded":
                break
            if status in ("Failed", "Canceled"):
                error = response.json().get("error") or {}
                raise translate_error_code(
                    str(error.get("code", status)),
                    200,
                    str(error.get("message", "")),
                    region,
                    None,
                )
        if method == "DELETE":
            return None
        if needs is not None and not needs(initial):
            return initial
        final = await self.request("GET", path)
        self.raise_for(final, region)
        result: dict[str, Any] = final.json()
        return result

    def _retry_after(self, response: Any) -> float:
        header = response.headers.get("Retry-After")
        if header is not None and header.isdigit():
            return float(header)
        return self.config.poll_interval_s

    def raise_for(self, response: Any, region: str, scope: str | None = None) -> None:
        """Raise the core's error for an ARM error response; nothing for a success."""
        if response.status_code < 400:
            return
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        header = response.headers.get("Retry-After")
        raise translate_error_code(
            str(error.get("code", "")),
            int(response.status_code),
            str(error.get("message", response.text())),
            region,
            scope,
            float(header) if header and header.isdigit() else None,
        )

    def rg_path(self, resource_group: str) -> str:
        return f"/subscriptions/{self.config.subscription_id}/resourceGroups/{resource_group}"

    def network_path(self, resource_group: str, kind: str, name: str) -> str:
        return f"{self.rg_path(resource_group)}/providers/Microsoft.Network/{kind}/{name}"

    async def aclose(self) -> None:
        if self._compute is not None:
            await self._compute.close()
            self._compute = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._owns_credential and self._credential is not None:
            await self._credential.close()
            self._credential = None
