"""An in-process SSH machine for tests: asyncssh server on loopback, real shell, SFTP, fault knobs.

Commands run as local processes through /bin/sh in the fake's home directory (HOME is
set to it), so a job really runs and really leaves processes behind. SFTP resolves
relative paths against the same home, as OpenSSH's sftp-server does. Keys (host and
client) are generated into the fake's directory; `known_hosts_path` lists the host key
for `127.0.0.1:port`, so clients verify it as they would a real machine's.

Faults (`add_fault`) are consumed in order by the first matching event: a login that
is refused (`reject_auth`), never answered (`hang`) or dropped (`disconnect`), or a
command answered with canned output instead of running (`exec`). `go_down()` makes
the machine stop answering (refuse or hang), `come_back()` undoes it; `aclose()` also
kills the processes left running in its home, as powering the machine off would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncssh

FaultKind = Literal["reject_auth", "hang", "disconnect", "exec"]


@dataclass
class SshFault:
    """One injected failure. `exec` faults match commands containing `command_contains`."""

    kind: FaultKind
    command_contains: str = ""
    stdout: str = ""
    stderr: str = ""
    exit_status: int = 0


class _HomeSftp(asyncssh.SFTPServer):
    """Relative paths land in the fake's home, absolute ones are taken as they are."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], home: Path) -> None:
        super().__init__(chan)
        self._home = os.fsencode(home)

    def map_path(self, path: bytes) -> bytes:
        if path.startswith(b"/"):
            return path
        return os.path.join(self._home, path) if path not in (b"", b".") else self._home


class _Session(asyncssh.SSHServer):
    def __init__(self, fake: FakeSshServer) -> None:
        self._fake = fake
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._fake.calls["connections"] += 1
        self._fake._live.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._fake._live.discard(self._conn)

    async def begin_auth(self, username: str) -> bool:
        fault = self._fake._take({"hang", "disconnect"})
        if fault is not None and fault.kind == "hang":
            await self._fake._stopped.wait()
        elif fault is not None and self._conn is not None:
            self._conn.close()
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self._fake._take({"reject_auth"}) is not None:
            return False
        return username == self._fake.user and (
            key.public_data == self._fake.client_key.public_data
        )


class FakeSshServer:
    """A fake lab machine at 127.0.0.1:`port`, whose home directory is `home`."""

    def __init__(self, root: Path, *, user: str = "skyd", name: str = "fake") -> None:
        self.root = root
        self.user = user
        self.name = name
        self.home = root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        keys = root / "keys"
        keys.mkdir(exist_ok=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = keys / "id_ed25519"
        self.client_key.write_private_key(str(self.client_key_path))
        self.client_key_path.chmod(0o600)
        self.known_hosts_path = keys / "known_hosts"
        self.host = "127.0.0.1"
        self.port = 0
        self.calls: Counter[str] = Counter()
        self.commands: list[str] = []
        self._faults: list[SshFault] = []
        self._server: asyncssh.SSHAcceptor | None = None
        self._silent: asyncio.Server | None = None
        self._live: set[asyncssh.SSHServerConnection] = set()
        self._silent_peers: set[asyncio.StreamWriter] = set()
        self._stopped = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._stopped.clear()
        self._server = await asyncssh.create_server(
            lambda: _Session(self),
            self.host,
            self.port,
            server_host_keys=[self.host_key],
            process_factory=self._handle,
            sftp_factory=lambda chan: _HomeSftp(chan, self.home),
            allow_scp=False,
            reuse_address=True,
            encoding=None,  # bytes both ways: a tar stream on stdin must arrive intact
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
            public = self.host_key.export_public_key("openssh").decode().strip()
            self.known_hosts_path.write_text(f"[{self.host}]:{self.port} {public}\n")

    async def stop(self) -> None:
        """Close the listener and every connection (the machine is gone)."""
        self._stopped.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._silent is not None:
            for writer in list(self._silent_peers):
                writer.close()
            self._silent.close()
            await self._silent.wait_closed()
            self._silent = None
        self.drop_connections()

    async def aclose(self) -> None:
        """Stop, and end every process still running in the machine's home (power off)."""
        await self.stop()
        for pgid in self.process_groups():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        # SIGKILL is asynchronous: a process can still be running for a moment after
        # killpg returns. Powered off means gone, so wait (bounded) until none is left.
        for _ in range(200):
            if not self.process_groups():
                return
            await asyncio.sleep(0.01)

    def process_groups(self) -> set[int]:
        """Groups of live processes whose working directory is inside the home."""
        home = str(self.home.resolve())
        groups: set[int] = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cwd = os.readlink(entry / "cwd")
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if cwd != home and not cwd.startswith(home + "/"):
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] != "Z" and int(fields[2]) not in (0, os.getpgrp()):
                groups.add(int(fields[2]))
        return groups

    async def go_down(self, mode: Literal["refuse", "hang"] = "refuse") -> None:
        """Stop answering: refuse new connections, or accept them and never speak."""
        await self.stop()
        if mode == "hang":
            self._silent = await asyncio.start_server(
                self._hold, self.host, self.port, reuse_address=True
            )

    async def come_back(self) -> None:
        await self.stop()
        await self.start()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._silent_peers.add(writer)
        with contextlib.suppress(ConnectionError):
            await reader.read()  # until the client gives up
        self._silent_peers.discard(writer)
        writer.close()

    def drop_connections(self) -> None:
        for conn in list(self._live):
            conn.close()
        self._live.clear()

    # -- faults ----------------------------------------------------------------------

    def add_fault(self, fault: SshFault, *, drop_connections: bool = True) -> None:
        """Queue a fault; by default open connections are dropped so the next login sees it."""
        self._faults.append(fault)
        if drop_connections and fault.kind != "exec":
            self.drop_connections()

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take(self, kinds: set[str], command: str = "") -> SshFault | None:
        for fault in self._faults:
            if fault.kind in kinds and fault.command_contains in command:
                self._faults.remove(fault)
                return fault
        return None

    # -- commands --------------------------------------------------------------------

    async def _handle(self, process: asyncssh.SSHServerProcess[bytes]) -> None:
        command = process.command or ""
        self.calls["exec"] += 1
        self.commands.append(command)
        fault = self._take({"exec"}, command)
        if fault is not None:
            process.stdout.write(fault.stdout.encode())
            process.stderr.write(fault.stderr.encode())
            process.exit(fault.exit_status)
            return
        env = {
            "HOME": str(self.home),
            "USER": self.user,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
        }
        env.update(process.env)
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            cwd=self.home,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        pump = asyncio.create_task(_pump(process.stdin, proc.stdin))
        try:
            # stdin is streamed (a client may never close it); output is whole at exit, which
            # is enough for what skyd sends
            out, err = await asyncio.gather(_read_all(proc.stdout), _read_all(proc.stderr))
            await proc.wait()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        finally:
            pump.cancel()
        process.stdout.write(out)
        process.stderr.write(err)
        process.exit(proc.returncode if proc.returncode is not None else -1)


async def _pump(source: asyncssh.SSHReader[bytes], sink: asyncio.StreamWriter | None) -> None:
    """Copy the session's stdin to the command's until either side ends."""
    if sink is None:
        return
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, asyncssh.Error):
        pass
    finally:
        sink.close()


async def _read_all(stream: asyncio.StreamReader | None) -> bytes:
    return await stream.read() if stream is not None else b""
