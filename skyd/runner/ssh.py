"""Runs job attempts on remote machines over SSH: upload, detached remote shim, logs, exit codes.

Same shape as skyd.runner.process.ProcessRunner — start / status / kill by the local
attempt directory — so a daemon restarted with a new SshRunner re-attaches from that
directory alone. Local files of an attempt:

    ssh-nodes.json        the nodes (rank, login, remote dir) and the job.log path
    ssh-log-offsets.json  how many bytes of each node's remote job.log are already in job.log
    ssh-status.json       the last status each node reported (exit codes kept locally)

On each node the remote shim (skyd.runner.remote_shim, shipped over SFTP) runs setup then
run in its own process group under REMOTE_DIR, records status.json there and holds a lock
while alive. Node 0's output goes into job.log as is; other nodes' complete lines are
appended with a "(node N) " prefix. A crash between appending log bytes and saving the
offset can repeat those bytes once; it never loses any.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skyd.errors import ProviderError
from skyd.model import Instance, RunPhase, RunStatus
from skyd.providers.ssh.connection import HostKeyChangedError, SshConnections, SshTarget
from skyd.providers.ssh.layout import SHIM_NAME, kill_command, run_dir, shim_command
from skyd.runner import remote_buckets, remote_shim, sync
from skyd.runner.process import RunCommand

if TYPE_CHECKING:
    import asyncssh

    from skyd.providers.ssh.provider import SshProvider

log = logging.getLogger(__name__)

NODES_FILE = "ssh-nodes.json"
OFFSETS_FILE = "ssh-log-offsets.json"
STATUS_FILE = "ssh-status.json"
# how each bucket of the job got onto rank 0 (FUSE mount or copy), read by `show`
MOUNTS_FILE = "mounts.json"
# beside the shim on the node: remote_shim runs it by its own directory
BUCKETS_HELPER = "remote_buckets.py"
CHECKPOINT_FILE = "ssh-checkpoint-seen"  # fingerprint of the checkpoints last pulled
# The daemon's paths mean nothing on the remote machine; the remote account's own apply.
_LOCAL_ONLY_ENV = ("PATH", "HOME", "USER", "SKYD_CHECKPOINT_DIR")


@dataclass(frozen=True, slots=True)
class SshNode:
    """One machine of an attempt: its rank, how to log in, and its remote directory."""

    rank: int
    instance_id: str
    target: SshTarget
    ip: str  # the address the other nodes reach it at (SKYD_NODE_IPS)
    remote_dir: str
    python: str = "python3"

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "instance_id": self.instance_id,
            "target": self.target.to_json(),
            "ip": self.ip,
            "remote_dir": self.remote_dir,
            "python": self.python,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SshNode:
        return cls(
            rank=int(data["rank"]),
            instance_id=str(data["instance_id"]),
            target=SshTarget.from_json(dict(data["target"])),
            ip=str(data["ip"]),
            remote_dir=str(data["remote_dir"]),
            python=str(data.get("python", "python3")),
        )


def ssh_nodes(provider: SshProvider, instance_ids: Sequence[str]) -> list[SshNode]:
    """The nodes of an attempt launched by the ssh provider, ranked in the given order."""
    nodes = []
    for rank, iid in enumerate(instance_ids):
        host = provider.host_config(iid)
        nodes.append(
            SshNode(
                rank=rank,
                instance_id=iid,
                target=provider.target(iid),
                ip=host.host,
                remote_dir=run_dir(host.remote_root, iid),
                python=host.python,
            )
        )
    return nodes


def cloud_nodes(
    instances: Sequence[Instance],
    *,
    user: str,
    key_path: Path,
    known_hosts: Path | None = None,
    remote_root: str = ".skyd",
    python: str = "python3",
    host_keys: Mapping[str, str] | None = None,
    port: int = 22,
) -> list[SshNode]:
    """The nodes of an attempt on cloud VMs: logged in at their public address (private
    when they have none) as the user the provider says the image has (else `user`), checked
    against the host key pinned for each (`host_keys`, by instance id), and reached by the
    others at their private address."""
    nodes = []
    for rank, inst in enumerate(instances):
        nodes.append(
            SshNode(
                rank=rank,
                instance_id=inst.instance_id,
                target=cloud_target(
                    inst,
                    user=user,
                    key_path=key_path,
                    known_hosts=known_hosts,
                    host_key=(host_keys or {}).get(inst.instance_id),
                    port=port,
                ),
                ip=inst.private_ip or inst.public_ip or "",
                remote_dir=run_dir(remote_root, inst.instance_id),
                python=python,
            )
        )
    return nodes


def cloud_target(
    inst: Instance,
    *,
    user: str,
    key_path: Path,
    known_hosts: Path | None = None,
    host_key: str | None = None,
    port: int = 22,
) -> SshTarget:
    """How to log in to one cloud VM (public address first; the image's own user)."""
    address = inst.public_ip or inst.private_ip
    if not address:
        raise ProviderError(f"{inst.instance_id} has no IP address yet; describe it again")
    login = inst.ssh_user or user
    return SshTarget(inst.instance_id, address, port, login, key_path, known_hosts, host_key)


def node_env(base: Mapping[str, str], node: SshNode, nodes: Sequence[SshNode]) -> dict[str, str]:
    """The job's environment on one node: the daemon's view minus local paths, plus its rank."""
    env = {k: v for k, v in base.items() if k not in _LOCAL_ONLY_ENV}
    ips = "\n".join(n.ip for n in sorted(nodes, key=lambda n: n.rank))
    for prefix in ("SKYD", "SKYPILOT"):
        env[f"{prefix}_NODE_RANK"] = str(node.rank)
        env[f"{prefix}_NODE_IPS"] = ips
        env[f"{prefix}_NUM_NODES"] = str(len(nodes))
    return env


def mount_destination(dest: str, remote_dir: str) -> str:
    """Where a file mount lands remotely: `~/x` in the home, `/abs` as is, `x` in the workdir."""
    if dest.startswith("~/"):
        return dest[2:]
    if dest.startswith("/"):
        return dest
    return f"{remote_dir}/workdir/{dest}"


def _node_status(data: Mapping[str, Any] | None, alive: bool) -> RunStatus:
    if data is None:
        return RunStatus(RunPhase.SETUP if alive else RunPhase.NOT_STARTED)
    phase = RunPhase(str(data["phase"]))
    if phase in (RunPhase.SETUP, RunPhase.RUN) and not alive:
        phase = RunPhase.LOST
    return RunStatus(
        phase,
        data.get("setup_exit"),
        data.get("run_exit"),
        data.get("run_started_at"),
        data.get("ended_at"),
        data.get("pid"),
    )


def _failed(status: RunStatus) -> bool:
    if status.phase in (RunPhase.KILLED, RunPhase.LOST):
        return True
    return status.phase == RunPhase.DONE and (
        status.setup_exit not in (0, None) or status.run_exit != 0
    )


def combine(statuses: Sequence[RunStatus]) -> RunStatus:
    """One status for a gang: the first failure decides; done when every node is done."""
    if not statuses:
        return RunStatus(RunPhase.NOT_STARTED)
    first = statuses[0]
    if any(s.phase == RunPhase.NOT_STARTED for s in statuses):
        # a start interrupted half-way: starting again skips the nodes already going
        return RunStatus(RunPhase.NOT_STARTED, pid=first.pid)
    failures = [(rank, s) for rank, s in enumerate(statuses) if _failed(s)]
    if failures:
        # the first to fail is the cause; the others were usually killed because of it
        rank, cause = min(
            failures, key=lambda f: f[1].ended_at if f[1].ended_at is not None else float("inf")
        )
        return replace(cause, node=rank) if len(statuses) > 1 else cause
    started = [s.run_started_at for s in statuses if s.run_started_at is not None]
    if all(s.phase == RunPhase.DONE for s in statuses):
        ends = [s.ended_at for s in statuses if s.ended_at is not None]
        return RunStatus(
            RunPhase.DONE, 0, 0, min(started, default=None), max(ends, default=None), first.pid
        )
    if any(s.phase == RunPhase.SETUP for s in statuses):
        return RunStatus(RunPhase.SETUP, pid=first.pid)
    return RunStatus(RunPhase.RUN, 0, None, max(started, default=None), None, first.pid)


def _status_json(status: RunStatus) -> dict[str, Any]:
    return {
        "phase": status.phase.value,
        "setup_exit": status.setup_exit,
        "run_exit": status.run_exit,
        "run_started_at": status.run_started_at,
        "ended_at": status.ended_at,
        "pid": status.pid,
    }


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class SshRunner:
    """Starts, watches and kills attempts on remote nodes through one connection cache."""

    def __init__(
        self,
        connections: SshConnections,
        *,
        command_timeout_s: float = 30.0,
        upload_timeout_s: float = 600.0,
        log_chunk_bytes: int = 4 * 1024 * 1024,
        checkpoint_sync_s: float = 10.0,
    ) -> None:
        self._sync_s = checkpoint_sync_s
        self._pulled: dict[str, float] = {}  # attempt dir -> when its checkpoints were pulled
        self._connections = connections
        self._timeout = command_timeout_s
        self._upload_timeout = upload_timeout_s
        self._chunk = log_chunk_bytes

    @property
    def connections(self) -> SshConnections:
        return self._connections

    # -- start -----------------------------------------------------------------------

    async def start(self, attempt_dir: Path, command: RunCommand, nodes: Sequence[SshNode]) -> int:
        """Upload and start every node that has not started yet; returns how many it started.

        `command.file_mounts` maps destinations as written in the task (`~/x`, `/abs/x`, `x`)
        to local sources; `command.cwd` is ignored (the remote workdir is REMOTE_DIR/workdir).
        """
        if not nodes:
            raise ValueError("SshRunner.start needs at least one node")
        attempt_dir.mkdir(parents=True, exist_ok=True)
        saved = _read_json(attempt_dir / NODES_FILE)
        if saved is None:
            _write_json(
                attempt_dir / NODES_FILE,
                {
                    "log_path": str(command.log_path),
                    "nodes": [n.to_json() for n in nodes],
                    "checkpoint_dir": command.env.get("SKYD_CHECKPOINT_DIR"),
                },
            )
        started = await asyncio.gather(*(self._start_node(n, command, nodes) for n in nodes))
        return sum(started)

    async def _start_node(
        self, node: SshNode, command: RunCommand, nodes: Sequence[SshNode]
    ) -> int:
        data, alive, _, _ = await self._remote_status(node, shim_may_be_missing=True)
        if data is not None or alive:
            return 0  # this node already runs (or ran) the attempt: never run it twice
        directory = node.remote_dir
        launch: dict[str, Any] = {
            "setup": command.setup,
            "run": command.run,
            "cwd": f"{directory}/workdir",
            "env": node_env(command.env, node, nodes),
            "abs_env": {"SKYD_CHECKPOINT_DIR": f"{directory}/checkpoints"},
        }
        if command.container is not None:
            # the shim runs setup and run inside it; named per attempt and node, so a kill
            # (or a restarted daemon's) finds it again
            task_id = command.env.get("SKYPILOT_TASK_ID", "skyd")
            launch["container"] = {
                **command.container,
                "name": f"{task_id}-{node.rank}",
                # absolute file-mount destinations are bound in too (the home always is)
                "binds": sorted(
                    d
                    for d in [
                        *(command.file_mounts or {}),
                        *(str(m["dest"]) for m in command.storage_mounts),
                    ]
                    if d.startswith("/")
                ),
            }
        if command.storage_mounts:
            # buckets land where the task says on the node (as its file mounts do)
            launch["storage_mounts"] = [
                {**m, "target": mount_destination(str(m["dest"]), directory)}
                for m in command.storage_mounts
            ]
        try:
            await self._upload_all(node, command, launch)
        except OSError as exc:  # a local source went missing since the task was checked
            raise ProviderError(
                f"could not upload the job's files to {node.target.name}: {exc}"
            ) from exc
        result = await self._connections.run(
            node.target,
            shim_command(node.python, directory, "start"),
            timeout_s=self._timeout,
        )
        if result.exit_status != 0:
            raise ProviderError(
                f"could not start the job on {node.target.name} ({node.python} "
                f"{directory}/{SHIM_NAME} exited {result.exit_status}): "
                f"{result.stderr.strip()[:300]}"
            )
        answer = _last_json_line(result.stdout, node)
        return 1 if isinstance(answer, dict) and answer.get("started") else 0

    async def _upload_all(
        self, node: SshNode, command: RunCommand, launch: Mapping[str, Any]
    ) -> None:
        directory = node.remote_dir
        async with self._connections.sftp(node.target, timeout_s=self._upload_timeout) as sftp:
            await sftp.makedirs(f"{directory}/workdir", exist_ok=True)
            await sftp.makedirs(f"{directory}/checkpoints", exist_ok=True)
            await _write_remote(sftp, f"{directory}/{SHIM_NAME}", _shim_source())
            if launch.get("storage_mounts"):
                await _write_remote(sftp, f"{directory}/{BUCKETS_HELPER}", _buckets_source())
        # trees go as one tar stream each (excludes from .skyignore / .gitignore applied)
        if command.workdir_source is not None:
            await self._send_tree(node, command.workdir_source, f"{directory}/workdir", True)
        for dest, src in (command.file_mounts or {}).items():
            await self._send_tree(node, Path(src), mount_destination(dest, directory), False)
        checkpoint = command.env.get("SKYD_CHECKPOINT_DIR")
        if checkpoint and node.rank == 0 and Path(checkpoint).is_dir():
            # what the last attempt saved (pulled back while it ran) is where it resumes from
            await self._send_tree(node, Path(checkpoint), f"{directory}/checkpoints", False)
        async with self._connections.sftp(node.target, timeout_s=self._upload_timeout) as sftp:
            # last: a launch.json on the node means everything it names is there
            await _write_remote(sftp, f"{directory}/launch.json", json.dumps(launch).encode())

    async def _send_tree(self, node: SshNode, source: Path, dest: str, excludes: bool) -> None:
        """`source` (file or tree) lands at `dest` on the node, in one tar stream."""
        parent, _, name = dest.rstrip("/").rpartition("/")
        data = await asyncio.to_thread(sync.pack, source, name, excludes=excludes)
        code, _, err = await self._connections.run_bytes(
            node.target, sync.unpack_command(parent), timeout_s=self._upload_timeout, stdin=data
        )
        if code != 0:
            raise ProviderError(
                f"could not unpack {source} into {dest} on {node.target.name} (tar exited "
                f"{code}): {err.strip()[:300]}"
            )

    async def pull_checkpoints(self, attempt_dir: Path, *, force: bool = False) -> bool:
        """Copy node 0's $SKYD_CHECKPOINT_DIR back into the job's local checkpoint directory
        when it changed since the last pull (so a preempted attempt's successor resumes from
        it). Returns whether anything was copied."""
        saved = _read_json(attempt_dir / NODES_FILE)
        if saved is None or not saved.get("checkpoint_dir") or not saved["nodes"]:
            return False
        node = SshNode.from_json(saved["nodes"][0])
        remote = f"{node.remote_dir}/checkpoints"
        seen_file = attempt_dir / CHECKPOINT_FILE
        result = await self._connections.run(
            node.target, sync.fingerprint_command(remote), timeout_s=self._timeout
        )
        mark = result.stdout.strip()
        if result.exit_status != 0 or mark == "none":
            return False
        if not force and seen_file.exists() and seen_file.read_text() == mark:
            return False
        code, data, err = await self._connections.run_bytes(
            node.target, sync.pack_command(remote), timeout_s=self._upload_timeout
        )
        if code != 0:
            raise ProviderError(f"could not read the checkpoints on {node.target.name}: {err}")
        await asyncio.to_thread(sync.replace_contents, Path(saved["checkpoint_dir"]), data)
        seen_file.write_text(mark)
        return True

    # -- status ----------------------------------------------------------------------

    def nodes(self, attempt_dir: Path) -> list[SshNode]:
        saved = _read_json(attempt_dir / NODES_FILE)
        if saved is None:
            return []
        return [SshNode.from_json(n) for n in saved["nodes"]]

    async def status(self, attempt_dir: Path) -> RunStatus:
        """How the attempt is doing; also appends new remote output to the job's log.

        A node that does not answer keeps its last known status (the provider's probe
        decides when its host is down)."""
        saved = _read_json(attempt_dir / NODES_FILE)
        if saved is None:
            return RunStatus(RunPhase.NOT_STARTED)
        nodes = [SshNode.from_json(n) for n in saved["nodes"]]
        log_path = Path(saved["log_path"])
        known: dict[str, Any] = _read_json(attempt_dir / STATUS_FILE) or {}
        answers = await asyncio.gather(
            *(self._poll_node(attempt_dir, log_path, n) for n in nodes), return_exceptions=True
        )
        statuses = []
        for node, answer in zip(nodes, answers, strict=True):
            if isinstance(answer, RunStatus):
                known[str(node.rank)] = _status_json(answer)
                statuses.append(answer)
                continue
            if not isinstance(answer, ProviderError) or isinstance(answer, HostKeyChangedError):
                raise answer  # a changed host key is not a node that is slow to answer
            log.warning("node %d (%s) did not answer: %s", node.rank, node.target.name, answer)
            last = known.get(str(node.rank))
            statuses.append(_node_status(last, True) if last else RunStatus(RunPhase.SETUP))
        _write_json(attempt_dir / STATUS_FILE, known)
        combined = combine(statuses)
        await self._maybe_pull(attempt_dir, combined)
        return combined

    async def _maybe_pull(self, attempt_dir: Path, status: RunStatus) -> None:
        """Checkpoints come back every `checkpoint_sync_s` while the run goes, and once more
        when it ends; a failed pull is retried on a later poll, never fatal."""
        if status.phase not in (RunPhase.RUN, RunPhase.DONE):
            return
        now = time.monotonic()
        key = str(attempt_dir)
        last = self._pulled.get(key)
        ended = status.phase == RunPhase.DONE
        if last is not None and ((ended and last < 0) or (not ended and now - last < self._sync_s)):
            return
        try:
            await self.pull_checkpoints(attempt_dir)
        except ProviderError as exc:
            log.warning("could not pull checkpoints of %s: %s", attempt_dir, exc)
            return
        self._pulled[key] = -1.0 if ended else now

    async def _poll_node(self, attempt_dir: Path, log_path: Path, node: SshNode) -> RunStatus:
        data, alive, log_size, mounts = await self._remote_status(node, shim_may_be_missing=True)
        status = _node_status(data, alive)
        if mounts and node.rank == 0 and _read_json(attempt_dir / MOUNTS_FILE) != mounts:
            _write_json(attempt_dir / MOUNTS_FILE, mounts)  # how each bucket got there, for show
        offsets: dict[str, int] = _read_json(attempt_dir / OFFSETS_FILE) or {}
        if status.phase != RunPhase.NOT_STARTED and log_size > offsets.get(str(node.rank), 0):
            # after the status, so a DONE node's output is complete when we copy it
            await self._pull_log(attempt_dir, log_path, node, final=not alive)
        return status

    async def _remote_status(
        self, node: SshNode, *, shim_may_be_missing: bool
    ) -> tuple[dict[str, Any] | None, bool, int, dict[str, str] | None]:
        """The node's status.json (None before the shim wrote one), whether the shim lives,
        the size of its remote job.log, and how its buckets were mounted (once they were)."""
        shim = shlex.quote(f"{node.remote_dir}/{SHIM_NAME}")
        command = shim_command(node.python, node.remote_dir, "status")
        if shim_may_be_missing:
            command = f"if [ -f {shim} ]; then {command}; else echo null; fi"
        result = await self._connections.run(node.target, command, timeout_s=self._timeout)
        if result.exit_status != 0:
            raise ProviderError(
                f"status of the job on {node.target.name} failed (exit {result.exit_status}): "
                f"{result.stderr.strip()[:300]}"
            )
        answer = _last_json_line(result.stdout, node)
        if not isinstance(answer, dict):
            return None, False, 0, None
        mounts = answer.get("mounts") if isinstance(answer.get("mounts"), dict) else None
        size = int(answer.get("log_size", 0))
        return answer.get("status"), bool(answer.get("alive")), size, mounts

    async def _pull_log(
        self, attempt_dir: Path, log_path: Path, node: SshNode, *, final: bool
    ) -> None:
        import asyncssh

        offsets: dict[str, int] = _read_json(attempt_dir / OFFSETS_FILE) or {}
        offset = offsets.get(str(node.rank), 0)
        async with self._connections.sftp(node.target, timeout_s=self._timeout) as sftp:
            try:
                async with sftp.open(f"{node.remote_dir}/job.log", "rb") as fh:
                    await fh.seek(offset)
                    chunk: bytes = await fh.read(self._chunk)
            except asyncssh.SFTPNoSuchFile:
                return
            except (asyncssh.Error, OSError) as exc:
                # the connection dropped under the read (the VM went, or the link did): the
                # node did not answer this poll; its output is copied at a later one
                raise ProviderError(f"reading the job's log on {node.target.name}: {exc}") from exc
        if node.rank == 0:
            taken, text = chunk, chunk
        else:
            taken = _whole_lines(chunk, final=final, full=len(chunk) >= self._chunk)
            text = b"".join(b"(node %d) %s\n" % (node.rank, line) for line in taken.splitlines())
        if not taken:
            return
        with open(log_path, "ab") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        offsets[str(node.rank)] = offset + len(taken)
        _write_json(attempt_dir / OFFSETS_FILE, offsets)

    # -- kill ------------------------------------------------------------------------

    async def kill(self, attempt_dir: Path, grace_seconds: float) -> None:
        """SIGTERM every node's process group, then SIGKILL what is left after the grace."""
        nodes = self.nodes(attempt_dir)

        async def kill_node(node: SshNode) -> None:
            try:
                await self._connections.run(
                    node.target,
                    kill_command(node.python, node.remote_dir, grace_seconds),
                    timeout_s=self._timeout + grace_seconds,
                )
            except ProviderError as exc:
                log.warning("could not kill the job on %s: %s", node.target.name, exc)

        await asyncio.gather(*(kill_node(n) for n in nodes))
        with contextlib.suppress(ProviderError):
            await self.status(attempt_dir)  # the last output and the killed phase, recorded

    async def aclose(self) -> None:
        return None  # the connections belong to whoever made them


def _last_json_line(stdout: str, node: SshNode) -> Any:
    """The shim's answer: its last output line (a login script may print before it)."""
    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise ProviderError(
            f"the remote shim on {node.target.name} gave no answer: {stdout.strip()[-200:]!r}"
        ) from exc


def _whole_lines(chunk: bytes, *, final: bool, full: bool) -> bytes:
    """The prefix of `chunk` made of complete lines: a partial last line waits for the rest,
    unless the node has ended (nothing more will come) or one line fills a whole chunk."""
    if final and not full:
        return chunk
    end = chunk.rfind(b"\n")
    if end < 0:
        return chunk if full else b""
    return chunk[: end + 1]


def _shim_source() -> bytes:
    return Path(remote_shim.__file__).read_bytes()


def _buckets_source() -> bytes:
    return Path(remote_buckets.__file__).read_bytes()


async def _write_remote(sftp: asyncssh.SFTPClient, path: str, data: bytes) -> None:
    """Write a file only its owner can read (launch.json holds the task's env values),
    whole or not at all: written beside, then renamed over. A daemon killed mid-write used
    to leave a truncated shim.py, which a restarted daemon then ran: it printed nothing and
    the job failed with "the remote shim gave no answer"."""
    import asyncssh  # imported when SSH is in use (it is slow to import)

    partial = f"{path}.partial"
    async with sftp.open(partial, "wb", asyncssh.SFTPAttrs(permissions=0o600)) as fh:
        await fh.write(data)
    await sftp.chmod(partial, 0o600)  # an existing file keeps its mode on open
    await sftp.posix_rename(partial, path)


async def _upload(sftp: asyncssh.SFTPClient, source: Path, dest: str) -> None:
    """Copy a local file or tree to `dest`, keeping modes; symlinks are recreated as links."""
    if not source.is_dir():
        parent = dest.rpartition("/")[0]
        if parent:
            await sftp.makedirs(parent, exist_ok=True)
        await sftp.put(str(source), dest, preserve=True)
        return
    await sftp.makedirs(dest, exist_ok=True)
    for root, dirs, files in os.walk(source):
        rel = Path(root).relative_to(source)
        remote_root = dest if str(rel) == "." else f"{dest}/{rel.as_posix()}"
        for name in list(dirs):
            local = Path(root) / name
            if local.is_symlink():
                dirs.remove(name)  # not followed: recreated as a link below
                await _link(sftp, local, f"{remote_root}/{name}")
            else:
                await sftp.makedirs(f"{remote_root}/{name}", exist_ok=True)
        for name in files:
            local = Path(root) / name
            if local.is_symlink():
                await _link(sftp, local, f"{remote_root}/{name}")
            else:
                await sftp.put(str(local), f"{remote_root}/{name}", preserve=True)


async def _link(sftp: asyncssh.SFTPClient, local: Path, remote: str) -> None:
    import asyncssh

    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        await sftp.remove(remote)
    await sftp.symlink(os.readlink(local), remote)
