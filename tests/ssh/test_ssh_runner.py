"""SshRunner against in-process SSH machines: upload, run, logs, exit codes, cancel, restart."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from skyd.errors import ProviderError
from skyd.model import LaunchRequest, RunPhase, RunStatus
from skyd.providers.ssh import SshConnections
from skyd.runner.process import RunCommand
from skyd.runner.ssh import SshRunner
from skyd.runner.ssh_node import SshNode, ssh_nodes
from skyd.runner.ssh_state import OFFSETS_FILE
from skyd.runner.ssh_status import combine
from skyd.testing.ssh_server import FakeSshServer
from tests.ssh.ssh_helpers import ProviderFactory, host_for, until_over, until_phase


def command(tmp_path: Path, run: str, setup: str | None = None, **extra: object) -> RunCommand:
    log = tmp_path / "job.log"
    log.touch()
    settings: dict[str, object] = {
        "setup": setup,
        "run": run,
        "cwd": tmp_path / "ignored-local-cwd",
        "env": {"PATH": "/local/only", "SKYD_JOB_ID": "7", "GREETING": "hello"},
        "log_path": log,
    }
    settings.update(extra)
    return RunCommand(**settings)  # type: ignore[arg-type]


async def nodes_on(make_provider: ProviderFactory, *boxes: FakeSshServer) -> list[SshNode]:
    """Hold one slot on each box (a gang of len(boxes) nodes) and return the runner's nodes."""
    provider = make_provider(*(host_for(b) for b in boxes))
    instance_ids = []
    for box in boxes:
        offer = next(o for o in provider.offers() if o.zone == box.name)
        launched = await provider.launch(
            LaunchRequest(
                job_id=7, attempt=1, client_token=f"job7-{box.name}", offer=offer, spot=False
            )
        )
        instance_ids.append(launched[0].instance_id)
    return ssh_nodes(provider, instance_ids)


async def test_upload_setup_run_logs_and_exit_code(
    tmp_path: Path, box_a: FakeSshServer, make_provider: ProviderFactory, runner: SshRunner
) -> None:
    workdir = tmp_path / "src"
    (workdir / "pkg").mkdir(parents=True)
    (workdir / "pkg" / "train.sh").write_text("echo training with $GREETING\nexit 3\n")
    (workdir / "pkg" / "train.sh").chmod(0o755)
    os.symlink("pkg/train.sh", workdir / "train")
    data = tmp_path / "data.csv"
    data.write_text("a,b\n")
    nodes = await nodes_on(make_provider, box_a)
    attempt = tmp_path / "attempt-1"
    cmd = command(
        tmp_path,
        run="./train; ",
        setup="echo setting up in $(basename $PWD); cat data/data.csv; echo PATH=$PATH",
        workdir_source=workdir,
        file_mounts={"data/data.csv": str(data), "~/shared/data.csv": str(data)},
    )
    assert await runner.start(attempt, cmd, nodes) == 1
    status = await until_over(runner, attempt)
    assert (status.phase, status.setup_exit, status.run_exit) == (RunPhase.DONE, 0, 3)
    text = cmd.log_path.read_text()
    assert "setting up in workdir" in text
    assert "a,b" in text
    assert "PATH=/local/only" not in text  # the daemon's PATH stays on the daemon's machine
    assert "training with hello" in text
    assert "--- skyd: run exited with code 3 ---" in text
    assert (box_a.home / "shared" / "data.csv").read_text() == "a,b\n"
    remote_workdir = box_a.home / nodes[0].remote_dir / "workdir"
    assert (remote_workdir / "train").is_symlink()
    assert os.access(remote_workdir / "pkg" / "train.sh", os.X_OK)
    # skyd's files on the machine are the login's alone: launch.json holds the envs (#12)
    remote_dir = box_a.home / nodes[0].remote_dir
    for private in ("launch.json", "job.log", "status.json"):
        assert (remote_dir / private).stat().st_mode & 0o077 == 0, private
    # Polling again neither repeats log lines nor changes the recorded outcome.
    again = await runner.status(attempt)
    assert again == status
    assert cmd.log_path.read_text() == text


async def test_failed_setup_skips_run(
    tmp_path: Path, box_a: FakeSshServer, make_provider: ProviderFactory, runner: SshRunner
) -> None:
    nodes = await nodes_on(make_provider, box_a)
    cmd = command(tmp_path, run="echo never", setup="echo broken setup; exit 4")
    await runner.start(tmp_path / "a", cmd, nodes)
    status = await until_over(runner, tmp_path / "a")
    assert (status.phase, status.setup_exit, status.run_exit) == (RunPhase.DONE, 4, None)
    assert "never" not in cmd.log_path.read_text().replace("echo never", "")


async def test_cancel_kills_the_remote_process_group(
    tmp_path: Path, box_a: FakeSshServer, make_provider: ProviderFactory, runner: SshRunner
) -> None:
    nodes = await nodes_on(make_provider, box_a)
    pid_file = box_a.home / "child.pid"
    cmd = command(tmp_path, run=f"sleep 300 & echo $! > {pid_file}; echo started; wait")
    attempt = tmp_path / "a"
    await runner.start(attempt, cmd, nodes)
    await until_phase(runner, attempt, RunPhase.RUN)
    while not pid_file.exists() or not pid_file.read_text().strip():
        await until_phase(runner, attempt, RunPhase.RUN)
    child = int(pid_file.read_text())
    await runner.kill(attempt, grace_seconds=2.0)
    status = await runner.status(attempt)
    assert status.phase == RunPhase.KILLED
    assert not _alive(child)


async def test_a_restarted_daemon_reattaches_without_rerunning(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
) -> None:
    nodes = await nodes_on(make_provider, box_a)
    gate = box_a.home / "go"
    cmd = command(
        tmp_path,
        run=f"echo first half; while [ ! -e {gate} ]; do sleep 0.02; done; echo second half",
    )
    attempt = tmp_path / "attempt-1"
    await runner.start(attempt, cmd, nodes)
    await until_phase(runner, attempt, RunPhase.RUN)
    while "first half" not in cmd.log_path.read_text():
        await until_phase(runner, attempt, RunPhase.RUN)

    # The daemon dies: a new runner with new connections knows only the attempt directory.
    fresh_connections = SshConnections(connect_timeout_s=2.0)
    try:
        restarted = SshRunner(fresh_connections, command_timeout_s=5.0)
        assert await restarted.start(attempt, cmd, nodes) == 0  # never a second run
        assert (await restarted.status(attempt)).phase == RunPhase.RUN
        gate.touch()
        status = await until_over(restarted, attempt)
    finally:
        await fresh_connections.aclose()
    assert (status.phase, status.run_exit) == (RunPhase.DONE, 0)
    text = cmd.log_path.read_text()
    assert text.count("first half") == 1  # resumed from the saved offset, nothing repeated
    assert text.count("second half") == 1
    assert text.count("--- skyd: run started") == 1


async def test_multi_node_env_and_prefixed_logs(
    tmp_path: Path,
    box_a: FakeSshServer,
    box_b: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
) -> None:
    nodes = await nodes_on(make_provider, box_a, box_b)
    run = (
        'echo "rank=$SKYD_NODE_RANK of $SKYD_NUM_NODES sp=$SKYPILOT_NODE_RANK/$SKYPILOT_NUM_NODES"'
        '; echo "$SKYPILOT_NODE_IPS" > ips; printf "%s\\n" "$SKYD_JOB_ID" "$SKYD_CHECKPOINT_DIR"'
    )
    attempt = tmp_path / "a"
    assert await runner.start(attempt, command(tmp_path, run=run), nodes) == 2
    status = await until_over(runner, attempt)
    assert (status.phase, status.run_exit) == (RunPhase.DONE, 0)
    lines = (tmp_path / "job.log").read_text().splitlines()
    assert "rank=0 of 2 sp=0/2" in lines
    assert "(node 1) rank=1 of 2 sp=1/2" in lines
    assert "(node 1) 7" in lines
    checkpoint = box_b.home / nodes[1].remote_dir / "checkpoints"
    assert f"(node 1) {checkpoint}" in lines
    for box, node in ((box_a, nodes[0]), (box_b, nodes[1])):
        ips = (box.home / node.remote_dir / "workdir" / "ips").read_text().split()
        assert ips == ["127.0.0.1", "127.0.0.1"]


async def test_one_failed_node_fails_the_gang(
    tmp_path: Path,
    box_a: FakeSshServer,
    box_b: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
) -> None:
    nodes = await nodes_on(make_provider, box_a, box_b)
    run = 'if [ "$SKYD_NODE_RANK" = 1 ]; then exit 9; fi; sleep 300'
    attempt = tmp_path / "a"
    await runner.start(attempt, command(tmp_path, run=run), nodes)
    status = await until_over(runner, attempt)
    assert (status.phase, status.run_exit) == (RunPhase.DONE, 9)
    await runner.kill(attempt, grace_seconds=1.0)
    assert (await runner.status(attempt)).run_exit == 9


async def test_terminate_kills_the_job_of_the_instance(
    tmp_path: Path, box_a: FakeSshServer, make_provider: ProviderFactory, runner: SshRunner
) -> None:
    provider = make_provider(host_for(box_a))
    launched = await provider.launch(
        LaunchRequest(
            job_id=8, attempt=1, client_token="t8", offer=provider.offers()[0], spot=False
        )
    )
    nodes = ssh_nodes(provider, [launched[0].instance_id])
    attempt = tmp_path / "a"
    await runner.start(attempt, command(tmp_path, run="sleep 300"), nodes)
    await until_phase(runner, attempt, RunPhase.RUN)
    await provider.terminate([launched[0].instance_id])
    assert (await runner.status(attempt)).phase == RunPhase.KILLED
    assert provider.usage()["box-a"].jobs == 0


async def test_unreachable_node_keeps_its_last_known_status(
    tmp_path: Path, box_a: FakeSshServer, make_provider: ProviderFactory, runner: SshRunner
) -> None:
    nodes = await nodes_on(make_provider, box_a)
    attempt = tmp_path / "a"
    await runner.start(attempt, command(tmp_path, run="sleep 300"), nodes)
    await until_phase(runner, attempt, RunPhase.RUN)
    await box_a.go_down()
    assert (await runner.status(attempt)).phase == RunPhase.RUN
    await box_a.come_back()
    await runner.kill(attempt, grace_seconds=1.0)
    assert (await runner.status(attempt)).phase == RunPhase.KILLED


def test_combine_gang_status() -> None:
    run = RunStatus(RunPhase.RUN, 0, None, 5.0, None, 11)
    done = RunStatus(RunPhase.DONE, 0, 0, 4.0, 9.0, 12)
    assert combine([run, done]).phase == RunPhase.RUN
    assert combine([done, done]) == RunStatus(RunPhase.DONE, 0, 0, 4.0, 9.0, 12)
    lost = RunStatus(RunPhase.LOST, 0, None, 5.0, None, 13)
    assert combine([run, lost]) == replace(lost, node=1)  # the node that failed, named
    assert combine([lost]) == lost
    assert combine([RunStatus(RunPhase.SETUP), run]).phase == RunPhase.SETUP
    assert combine([RunStatus(RunPhase.NOT_STARTED), run]).phase == RunPhase.NOT_STARTED


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_a_job_released_while_its_host_was_down_is_killed_when_it_returns(
    tmp_path: Path, box_a: FakeSshServer, make_provider: ProviderFactory, runner: SshRunner
) -> None:
    provider = make_provider(host_for(box_a), down_after_failures=1)
    launched = await provider.launch(
        LaunchRequest(
            job_id=9, attempt=1, client_token="t9", offer=provider.offers()[0], spot=False
        )
    )
    iid = launched[0].instance_id
    attempt = tmp_path / "a"
    await runner.start(attempt, command(tmp_path, run="sleep 300"), ssh_nodes(provider, [iid]))
    await until_phase(runner, attempt, RunPhase.RUN)
    await box_a.go_down()
    assert await provider.describe([iid]) == {iid: "PREEMPTED"}
    await provider.terminate([iid])  # the core recovers the job elsewhere and lets this go
    assert provider.usage()["box-a"].jobs == 0
    await box_a.come_back()
    assert (await runner.status(attempt)).phase == RunPhase.RUN  # a partition, not a crash
    await provider.describe()  # the next reconcile reaches the host again
    assert (await runner.status(attempt)).phase == RunPhase.KILLED


async def test_a_missing_local_source_is_a_clear_error(
    tmp_path: Path, box_a: FakeSshServer, make_provider: ProviderFactory, runner: SshRunner
) -> None:
    nodes = await nodes_on(make_provider, box_a)
    gone = tmp_path / "gone.csv"
    cmd = command(tmp_path, run="true", file_mounts={"data.csv": str(gone)})
    with pytest.raises(ProviderError, match=r"could not upload the job's files to box-a: .*gone"):
        await runner.start(tmp_path / "a", cmd, nodes)
    assert (await runner.status(tmp_path / "a")).phase == RunPhase.NOT_STARTED


async def test_a_wrapper_that_cannot_record_its_end_is_recorded_killed(
    tmp_path: Path, box_a: FakeSshServer, make_provider: ProviderFactory, runner: SshRunner
) -> None:
    nodes = await nodes_on(make_provider, box_a)
    attempt = tmp_path / "a"
    await runner.start(attempt, command(tmp_path, run="sleep 300"), nodes)
    running = await until_phase(runner, attempt, RunPhase.RUN)
    assert running.pid is not None
    os.kill(running.pid, signal.SIGSTOP)  # the fake machine is this one: freeze the wrapper
    await runner.kill(attempt, grace_seconds=0.2)
    assert (await runner.status(attempt)).phase == RunPhase.KILLED


async def test_a_link_dropped_while_reading_the_log_is_a_node_that_did_not_answer(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SFTP's "connection not open" under the log read (a VM going away, seen in the cloud
    chaos run) keeps the node's last known status, as any other silence does: it no longer
    escapes the scheduler's step as an unhandled asyncssh error."""
    import contextlib
    from collections.abc import AsyncIterator

    import asyncssh

    nodes = await nodes_on(make_provider, box_a)
    attempt = tmp_path / "a"
    await runner.start(attempt, command(tmp_path, run="echo out; sleep 300"), nodes)
    await until_phase(runner, attempt, RunPhase.RUN)

    class Dropped:
        def open(self, *args: object, **kwargs: object) -> object:
            raise asyncssh.SFTPNoConnection("Connection not open")

    @contextlib.asynccontextmanager
    async def dropped(*args: object, **kwargs: object) -> AsyncIterator[Dropped]:
        yield Dropped()

    with monkeypatch.context() as patch:
        patch.setattr(runner._connections, "sftp", dropped)
        # output not copied yet (so the next poll reads the log), whose read now fails
        (attempt / OFFSETS_FILE).unlink(missing_ok=True)
        assert (await runner.status(attempt)).phase == RunPhase.RUN
    await runner.kill(attempt, grace_seconds=1.0)


async def test_a_start_killed_mid_upload_leaves_no_half_written_shim(
    tmp_path: Path,
    box_a: FakeSshServer,
    make_provider: ProviderFactory,
    runner: SshRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A daemon killed while it wrote the shim to a node: the restarted daemon's start
    finds no shim there (never half of one, which it would run: it printed nothing and the
    job failed with "the remote shim gave no answer" in the cloud chaos run) and runs it."""
    import asyncssh

    class Killed(BaseException):
        """The daemon died here."""

    nodes = await nodes_on(make_provider, box_a)
    attempt = tmp_path / "a"
    real_write = asyncssh.SFTPClientFile.write

    async def half_then_killed(
        self: asyncssh.SFTPClientFile, data: bytes, offset: int | None = None
    ) -> int:
        await real_write(self, data[: len(data) // 2], offset)
        raise Killed()

    with monkeypatch.context() as patch:
        patch.setattr(asyncssh.SFTPClientFile, "write", half_then_killed)
        with pytest.raises(Killed):
            await runner.start(attempt, command(tmp_path, run="echo again"), nodes)
    restarted = SshConnections(connect_timeout_s=2.0)
    try:
        fresh = SshRunner(restarted, command_timeout_s=5.0)
        await fresh.start(attempt, command(tmp_path, run="echo again"), nodes)
        final = await until_over(fresh, attempt)
    finally:
        await restarted.aclose()
    assert (final.phase, final.run_exit) == (RunPhase.DONE, 0)
    assert "\nagain\n" in (tmp_path / "job.log").read_text()
