"""Budget alerts to the outside: a command fed the alert as JSON, or a webhook on loopback or a
Unix socket, each retried with backoff; a hook that keeps failing is logged, never fatal."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import shlex
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("skyd.accounting.alerts")

_BACKOFF_SECONDS = (1.0, 4.0, 15.0, 60.0)
_TIMEOUT_SECONDS = 10.0


def check_hook(target: str | None) -> None:
    """Raise ValueError naming the problem if `target` is not a usable hook."""
    if target is None or not target.strip():
        return
    if target.startswith(("http://", "https://")):
        host = urlsplit(target).hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"accounting.budget_hook: {target!r} is not on loopback; webhooks go to "
                "127.0.0.1, localhost or [::1] (or unix:/path/to.sock), or give a command"
            )
        return
    if target.startswith("unix:"):
        if not target.removeprefix("unix:").startswith("/"):
            raise ValueError(
                f"accounting.budget_hook: {target!r}: give an absolute socket path, "
                "e.g. unix:/run/alerts.sock"
            )
        return
    if not shlex.split(target):
        raise ValueError("accounting.budget_hook: empty command")


class AlertHook:
    """Delivers alerts in the background, at most `attempts` tries each."""

    def __init__(
        self,
        target: str | None,
        *,
        attempts: int = 3,
        backoff: tuple[float, ...] = _BACKOFF_SECONDS,
    ) -> None:
        check_hook(target)
        self.target = target.strip() if target else None
        self.attempts = attempts
        self.backoff = backoff or (0.0,)
        self._tasks: set[asyncio.Task[bool]] = set()
        self.delivered = 0
        self.failed = 0

    def send(self, payload: dict[str, Any]) -> asyncio.Task[bool] | None:
        """Start delivering `payload` (needs a running loop); None when no hook is set."""
        if self.target is None:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None  # called outside the daemon's loop (tests of the books): nothing to do
        task = loop.create_task(self.deliver(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def deliver(self, payload: dict[str, Any]) -> bool:
        """Try up to `attempts` times with backoff; True once delivered."""
        body = json.dumps(payload).encode()
        for attempt in range(self.attempts):
            try:
                await asyncio.wait_for(self._once(body), _TIMEOUT_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of an outside hook is retried, then logged
                if attempt + 1 == self.attempts:
                    self.failed += 1
                    log.error("budget hook %s failed %d times: %s", self.target, self.attempts, exc)
                    return False
                await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
                continue
            self.delivered += 1
            return True
        return False

    async def _once(self, body: bytes) -> None:
        assert self.target is not None
        if self.target.startswith(("http://", "https://", "unix:")):
            await self._post(body)
            return
        proc = await asyncio.create_subprocess_exec(
            *shlex.split(self.target),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate(body)
        if proc.returncode != 0:
            raise RuntimeError(f"exit {proc.returncode}: {err.decode(errors='replace')[:200]}")

    async def _post(self, body: bytes) -> None:
        import aiohttp  # only when a webhook is configured

        assert self.target is not None
        connector: aiohttp.BaseConnector | None = None
        url = self.target
        if url.startswith("unix:"):
            connector = aiohttp.UnixConnector(path=url.removeprefix("unix:"))
            url = "http://localhost/"
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp,
        ):
            if resp.status >= 300:
                raise RuntimeError(f"HTTP {resp.status}")

    async def aclose(self) -> None:
        """Wait briefly for deliveries in flight, then cancel the rest."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=2.0)
        for task in pending:
            task.cancel()
