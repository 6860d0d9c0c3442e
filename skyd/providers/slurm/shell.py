"""Where Slurm commands run: on this host (the daemon is on the login node) or over SSH.

Both shells offer the same four operations — run a command, write a file, read a file from
an offset, find the home directory — so the provider and runner never know which it is.
The SSH one reuses the ssh provider's cached asyncssh connections and error translation.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from skyd.errors import ProviderError, TransientError
from skyd.providers.ssh.connection import CommandResult, SshConnections, SshTarget


class SlurmShell(Protocol):
    """Runs commands and moves small files on a cluster's login node."""

    where: str  # how errors name the machine

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult: ...

    async def write_text(self, path: str, text: str, *, timeout_s: float) -> None: ...

    async def read_from(self, path: str, offset: int, *, timeout_s: float) -> bytes:
        """The file's bytes from `offset` on; b"" when it does not exist (yet)."""
        ...

    async def home(self, *, timeout_s: float) -> str: ...


class LocalShell:
    """The login node is this host."""

    where = "this host"

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise ProviderError(
                f"{argv[0]} is not installed on {self.where}: install Slurm's client "
                "commands (Debian: slurm-client) or configure a login node"
            ) from exc
        try:
            async with asyncio.timeout(timeout_s):
                out, err = await proc.communicate()
        except TimeoutError as exc:
            proc.kill()
            await proc.wait()
            raise TransientError(f"{argv[0]} did not answer within {timeout_s:g} s") from exc
        return CommandResult(
            exit_status=proc.returncode if proc.returncode is not None else -1,
            stdout=out.decode("utf-8", "replace"),
            stderr=err.decode("utf-8", "replace"),
        )

    async def write_text(self, path: str, text: str, *, timeout_s: float) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)

    async def read_from(self, path: str, offset: int, *, timeout_s: float) -> bytes:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return fh.read()
        except FileNotFoundError:
            return b""

    async def home(self, *, timeout_s: float) -> str:
        return str(Path.home())


class SshShell:
    """The login node is reached with asyncssh (connections shared with the ssh provider)."""

    def __init__(self, connections: SshConnections, target: SshTarget) -> None:
        self._connections = connections
        self._target = target
        self.target = target
        self.where = f"{target.user}@{target.host}"

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult:
        result = await self._connections.run(self._target, shlex.join(argv), timeout_s=timeout_s)
        if result.exit_status == 127 and "not found" in result.stderr:
            raise ProviderError(
                f"{argv[0]} is not installed on {self.where} (or not on its PATH): "
                f"{result.stderr.strip()[:200]}"
            )
        return result

    async def write_text(self, path: str, text: str, *, timeout_s: float) -> None:
        parent = path.rsplit("/", 1)[0] if "/" in path else "."
        made = await self._connections.run(
            self._target, f"mkdir -p {shlex.quote(parent)}", timeout_s=timeout_s
        )
        if made.exit_status != 0:
            raise ProviderError(f"cannot create {parent} on {self.where}: {made.stderr.strip()}")
        import asyncssh

        try:
            async with self._connections.sftp(self._target, timeout_s=timeout_s) as sftp:
                async with sftp.open(path + ".tmp", "w") as fh:
                    await fh.write(text)
                await sftp.posix_rename(path + ".tmp", path)
        except asyncssh.SFTPError as exc:
            raise ProviderError(f"cannot write {path} on {self.where}: {exc.reason}") from exc

    async def read_from(self, path: str, offset: int, *, timeout_s: float) -> bytes:
        import asyncssh

        try:
            async with (
                self._connections.sftp(self._target, timeout_s=timeout_s) as sftp,
                sftp.open(path, "rb") as fh,
            ):
                await fh.seek(offset)
                data: bytes = await fh.read()
        except asyncssh.SFTPNoSuchFile:
            return b""
        except asyncssh.SFTPError as exc:
            raise ProviderError(f"cannot read {path} on {self.where}: {exc.reason}") from exc
        return data

    async def home(self, *, timeout_s: float) -> str:
        result = await self._connections.run(self._target, 'printf %s "$HOME"', timeout_s=timeout_s)
        if result.exit_status != 0 or not result.stdout.startswith("/"):
            raise ProviderError(f"cannot find the home directory on {self.where}")
        return result.stdout
