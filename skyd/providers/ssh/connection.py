"""One cached asyncssh connection per machine; asyncssh's failures turned into skyd's errors."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from skyd.errors import AuthError, ProviderError, TransientError

if TYPE_CHECKING:
    import asyncssh


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Where to log in. `name` is how errors and logs call the machine."""

    name: str
    host: str
    port: int
    user: str
    key_path: Path
    known_hosts: Path | None = None
    # The host key pinned for this machine (OpenSSH "type base64"): only it is accepted.
    # Cloud VMs are trusted on first use and pinned in the store (skyd.runner.cloud_login).
    host_key: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "key_path": str(self.key_path),
            "known_hosts": str(self.known_hosts) if self.known_hosts else None,
            "host_key": self.host_key,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> SshTarget:
        known = data.get("known_hosts")
        return cls(
            name=str(data["name"]),
            host=str(data["host"]),
            port=int(str(data["port"])),
            user=str(data["user"]),
            key_path=Path(str(data["key_path"])),
            known_hosts=Path(str(known)) if known else None,
            host_key=str(data["host_key"]) if data.get("host_key") else None,
        )


@dataclass(frozen=True, slots=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


class HostKeyChangedError(AuthError):
    """The machine presented another host key than the one pinned when skyd first reached
    it: whatever answers at that address is not the machine skyd launched."""


def fingerprint(public_key: str) -> str:
    """SHA256:… of an OpenSSH public key line, as `ssh-keygen -l` prints it."""
    import asyncssh

    return str(asyncssh.import_public_key(public_key).get_fingerprint("sha256"))


def translate(exc: BaseException, target: SshTarget) -> ProviderError:
    """asyncssh / socket failure → skyd error (scope left to the caller, who knows the pool)."""
    import asyncssh

    where = f"{target.user}@{target.host}:{target.port} ({target.name})"
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthError(
            f"{where} refused the login with key {target.key_path}: add the public key to the "
            "account's ~/.ssh/authorized_keys or fix key_path/user"
        )
    if isinstance(exc, asyncssh.HostKeyNotVerifiable) and target.host_key:
        return HostKeyChangedError(
            f"{where} presented a host key other than the one pinned when skyd first connected "
            f"({fingerprint(target.host_key)}): refusing the connection. The machine at this "
            "address is not the one skyd launched (or it was reinstalled); terminate it"
        )
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        known = target.known_hosts or "~/.ssh/known_hosts"
        return AuthError(
            f"{where} presented a host key not listed in {known}: add it (ssh-keyscan) "
            "after checking it is the right machine"
        )
    if isinstance(exc, asyncssh.KeyImportError | FileNotFoundError | PermissionError):
        return AuthError(f"cannot load the private key {target.key_path} for {where}: {exc}")
    if isinstance(exc, TimeoutError):
        return TransientError(f"{where} did not answer in time")
    if isinstance(exc, asyncssh.Error | OSError | EOFError):
        return TransientError(f"{where} is unreachable: {exc}")
    return TransientError(f"{where}: unexpected SSH failure: {exc!r}")


class SshConnections:
    """A cache of client connections, one per target, reopened when one breaks."""

    def __init__(self, *, connect_timeout_s: float = 10.0, keepalive_s: float = 15.0) -> None:
        self._connect_timeout = connect_timeout_s
        self._keepalive = keepalive_s
        self._conns: dict[SshTarget, asyncssh.SSHClientConnection] = {}
        self._opening: dict[SshTarget, asyncio.Lock] = {}

    async def connection(self, target: SshTarget) -> asyncssh.SSHClientConnection:
        import asyncssh

        lock = self._opening.setdefault(target, asyncio.Lock())
        async with lock:
            conn = self._conns.get(target)
            if conn is not None and not conn.is_closed():
                return conn
            kwargs: dict[str, object] = {}
            if target.host_key is not None:
                # (trusted host keys, trusted CA keys, revoked keys): the pin and nothing else
                kwargs["known_hosts"] = ([asyncssh.import_public_key(target.host_key)], [], [])
            elif target.known_hosts is not None:
                kwargs["known_hosts"] = str(target.known_hosts)
            conn = await self._login(target, **kwargs)
            self._conns[target] = conn
            return conn

    async def _login(self, target: SshTarget, **host_keys: object) -> asyncssh.SSHClientConnection:
        """One asyncssh login to `target` with skyd's key; `host_keys` says how its host key
        is checked (asyncssh's default known_hosts when not given)."""
        import asyncssh

        try:
            async with asyncio.timeout(self._connect_timeout):
                return await asyncssh.connect(
                    target.host,
                    port=target.port,
                    username=target.user,
                    client_keys=[str(target.key_path)],
                    agent_path=None,
                    config=[],  # the daemon's behaviour must not depend on ~/.ssh/config
                    connect_timeout=self._connect_timeout,
                    login_timeout=self._connect_timeout,
                    keepalive_interval=self._keepalive,
                    **host_keys,
                )
        except (asyncssh.Error, OSError, TimeoutError, EOFError) as exc:
            raise translate(exc, target) from exc

    async def first_contact(self, target: SshTarget) -> str:
        """Log in to a machine seen for the first time, accepting whatever host key it
        presents (trust on first use), and return that key to pin. The connection stays
        cached for `replace(target, host_key=<the key>)`. A target with a pin is checked
        against it instead (HostKeyChangedError on a mismatch)."""
        if target.host_key is not None:
            await self.connection(target)
            return target.host_key
        # nothing known yet: this first key is the one pinned
        conn = await self._login(target, known_hosts=None)
        key = conn.get_server_host_key()
        if key is None:  # pragma: no cover - asyncssh always has one after a handshake
            conn.close()
            raise TransientError(f"{target.name} presented no host key")
        pinned = key.export_public_key("openssh").decode().split()
        line = f"{pinned[0]} {pinned[1]}"
        self._conns[dataclasses.replace(target, host_key=line)] = conn
        return line

    async def run_bytes(
        self, target: SshTarget, command: str, *, timeout_s: float, stdin: bytes | None = None
    ) -> tuple[int, bytes, str]:
        """Run `command` feeding it `stdin` (a tar stream, say); its stdout is returned as
        bytes, its stderr as text. Not retried: a stream half sent must be sent again whole."""
        conn = await self.connection(target)
        import asyncssh

        try:
            async with asyncio.timeout(timeout_s):
                result = await conn.run(
                    command,
                    check=False,
                    input=stdin if stdin is not None else b"",
                    encoding=None,
                )
        except (asyncssh.Error, OSError, EOFError, TimeoutError) as exc:
            await self.forget(target)
            raise translate(exc, target) from exc
        out = result.stdout if isinstance(result.stdout, bytes) else b""
        return (
            result.exit_status if result.exit_status is not None else -1,
            out,
            text_of(result.stderr),
        )

    async def run(
        self, target: SshTarget, command: str, *, timeout_s: float, retry: bool = True
    ) -> CommandResult:
        """Run `command` through the remote user's shell; a broken cached connection is
        reopened once (a timeout is not retried: it would double the wait)."""
        import asyncssh

        for attempt in range(2 if retry else 1):
            conn = await self.connection(target)
            try:
                async with asyncio.timeout(timeout_s):
                    result = await conn.run(command, check=False, stdin=asyncssh.DEVNULL)
            except TimeoutError as exc:
                await self.forget(target)
                raise translate(exc, target) from exc
            except (asyncssh.Error, OSError, EOFError) as exc:
                await self.forget(target)
                if attempt == 0 and retry and not isinstance(exc, asyncssh.PermissionDenied):
                    continue
                raise translate(exc, target) from exc
            return CommandResult(
                exit_status=result.exit_status if result.exit_status is not None else -1,
                stdout=text_of(result.stdout),
                stderr=text_of(result.stderr),
            )
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.asynccontextmanager
    async def sftp(
        self, target: SshTarget, *, timeout_s: float
    ) -> AsyncIterator[asyncssh.SFTPClient]:
        """An SFTP session; the whole `async with` body must finish within `timeout_s`.

        Remote file errors (asyncssh.SFTPError) and local ones (OSError other than a
        broken connection) pass through; connection failures become skyd errors."""
        import asyncssh

        conn = await self.connection(target)
        try:
            async with asyncio.timeout(timeout_s), conn.start_sftp_client() as client:
                yield client
        except (asyncssh.SFTPNoConnection, asyncssh.SFTPConnectionLost) as exc:
            # SFTP's own words for a link that broke: the cached connection is dead too
            await self.forget(target)
            raise translate(exc, target) from exc
        except asyncssh.SFTPError:
            raise
        except (asyncssh.Error, ConnectionError, EOFError, TimeoutError) as exc:
            await self.forget(target)
            raise translate(exc, target) from exc

    async def forget(self, target: SshTarget) -> None:
        conn = self._conns.pop(target, None)
        if conn is not None:
            conn.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await conn.wait_closed()

    async def aclose(self) -> None:
        for target in list(self._conns):
            await self.forget(target)


def text_of(value: object) -> str:
    """A command's stdout or stderr as text, whatever asyncssh returned (None, bytes, str)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
