"""Runs an attempt in its Job's pods: hands over the launch ConfigMap, reads logs and status.

Same shape as the other runners (start / status / kill by the local attempt directory).
Local files: k8s-job.json (context, Job, node count, log path) and k8s-log-offsets.json.
Each pod's progress is read from the marker lines its boot program prints (manifests.py):
the pod log API is the only channel a pod without a service account has. Rank 0's log goes
into job.log as is; other ranks' lines with a "(node N) " prefix.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException

from skyd.errors import ProviderError
from skyd.model import RunPhase, RunStatus
from skyd.providers.kubernetes.config import KubernetesConfig
from skyd.providers.kubernetes.errors import parse_instance_id, translate
from skyd.providers.kubernetes.manifests import (
    CONTAINER,
    RUN_EXITED,
    RUN_STARTED,
    SETUP_EXITED,
    disrupted,
    launch_config_map,
)
from skyd.runner.json_files import read_json, write_json
from skyd.runner.node_logs import node_output
from skyd.runner.process import RunCommand
from skyd.runner.ssh_status import combine

JOB_FILE = "k8s-job.json"
OFFSETS_FILE = "k8s-log-offsets.json"
_LOCAL_ONLY_ENV = ("PATH", "HOME", "USER", "SKYD_CHECKPOINT_DIR")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class KubeJobs(Protocol):
    """What the runner asks of the kubernetes provider."""

    config: KubernetesConfig

    @property
    def timeout(self) -> float: ...

    async def api(self, context: str) -> client.ApiClient: ...

    async def pods_of(self, context: str, job: str) -> list[Any]: ...

    async def delete_job(self, context: str, name: str) -> None: ...


def node_status(log: str, alive: bool) -> RunStatus:
    """One pod's progress from the marker lines of its log."""
    setup_exit = run_exit = None
    run_started = False
    for line in log.splitlines():
        if line.startswith(SETUP_EXITED):
            setup_exit = _code(line, SETUP_EXITED)
        elif line == RUN_STARTED:
            run_started = True
        elif line.startswith(RUN_EXITED):
            run_exit = _code(line, RUN_EXITED)
    if setup_exit not in (None, 0):
        return RunStatus(RunPhase.DONE, setup_exit=setup_exit)
    if run_exit is not None:
        return RunStatus(RunPhase.DONE, setup_exit=0, run_exit=run_exit)
    if not alive:
        return RunStatus(RunPhase.LOST)
    if run_started:
        return RunStatus(RunPhase.RUN, setup_exit=0)
    return RunStatus(RunPhase.SETUP)


def _code(line: str, prefix: str) -> int | None:
    text = line.removeprefix(prefix).removesuffix(" ---").strip()
    return int(text) if text.lstrip("-").isdigit() else None


class KubernetesRunner:
    def __init__(self, provider: KubeJobs) -> None:
        self._provider = provider

    async def start(
        self, attempt_dir: Path, command: RunCommand, instance_ids: Sequence[str]
    ) -> int:
        parsed = parse_instance_id(instance_ids[0]) if instance_ids else None
        if parsed is None:
            raise ValueError("KubernetesRunner.start needs the attempt's instances")
        attempt_dir.mkdir(parents=True, exist_ok=True)
        saved = read_json(attempt_dir / JOB_FILE)
        if saved is not None and saved.get("started"):
            return 0
        context, job, _ = parsed
        if command.workdir_source is not None or command.file_mounts:
            raise ProviderError(
                "jobs on Kubernetes cannot take a workdir or file_mounts yet: put the files "
                "in the image or fetch them in setup"
            )
        pods = await self._provider.pods_of(context, job)
        ips = [p.status.pod_ip or "" for p in pods]
        if len(pods) != len(instance_ids) or not all(ips):
            raise ProviderError(f"the pods of {job} are not all running yet")
        record = {
            "context": context,
            "job": job,
            "num_nodes": len(pods),
            "log_path": str(command.log_path),
            "started": False,
        }
        write_json(attempt_dir / JOB_FILE, record)
        env = {
            k: v
            for k, v in command.env.items()
            if k not in _LOCAL_ONLY_ENV and _ENV_NAME.fullmatch(k)
        }
        body = launch_config_map(
            name=job,
            labels=dict(pods[0].metadata.labels or {}),
            setup=command.setup,
            run=command.run,
            env=env,
            ips=ips,
        )
        core = client.CoreV1Api(await self._provider.api(context))
        try:
            await core.create_namespaced_config_map(
                self._provider.config.namespace,
                body,  # type: ignore[arg-type]  # the client sends a plain dict as is
                _request_timeout=self._provider.timeout,
            )
        except ApiException as exc:
            if exc.status != 409:  # 409: handed over already (a retried start)
                raise translate(exc, context) from exc
        record["started"] = True
        write_json(attempt_dir / JOB_FILE, record)
        return 1

    async def status(self, attempt_dir: Path) -> RunStatus:
        saved = read_json(attempt_dir / JOB_FILE)
        if saved is None or not saved.get("started"):
            return RunStatus(RunPhase.NOT_STARTED)
        context, job = str(saved["context"]), str(saved["job"])
        pods = await self._provider.pods_of(context, job)
        core = client.CoreV1Api(await self._provider.api(context))
        offsets: dict[str, int] = read_json(attempt_dir / OFFSETS_FILE) or {}
        statuses = []
        for rank in range(int(saved["num_nodes"])):
            pod = pods[rank] if rank < len(pods) else None
            if pod is None:
                statuses.append(RunStatus(RunPhase.LOST))
                continue
            alive = pod.status.phase == "Running"
            try:
                text = await core.read_namespaced_pod_log(
                    pod.metadata.name,
                    self._provider.config.namespace,
                    container=CONTAINER,
                    _request_timeout=self._provider.timeout,
                )
            except ApiException as exc:
                if exc.status not in (400, 404):
                    raise translate(exc, context) from exc
                text = ""
            self._append(Path(str(saved["log_path"])), rank, text, offsets, final=not alive)
            statuses.append(node_status(text, alive))
        write_json(attempt_dir / OFFSETS_FILE, offsets)
        status = combine(statuses)
        if status.phase == RunPhase.LOST and any(disrupted(p) for p in pods):
            # evicted or preempted (the other pods then fail with the Job): not the task's
            # end; the provider reports the instances PREEMPTED and the scheduler recovers
            return RunStatus(RunPhase.RUN, setup_exit=0)
        if saved.get("killed") and status.phase in (RunPhase.DONE, RunPhase.LOST):
            return replace(status, phase=RunPhase.KILLED)
        return status

    def _append(
        self, log_path: Path, rank: int, text: str, offsets: dict[str, int], *, final: bool
    ) -> None:
        offset = offsets.get(str(rank), 0)
        taken, out = node_output(rank, text.encode()[offset:], final=final)
        if not taken:
            return
        with open(log_path, "ab") as fh:
            fh.write(out)
        offsets[str(rank)] = offset + len(taken)

    async def kill(self, attempt_dir: Path, grace_seconds: float) -> None:
        saved = read_json(attempt_dir / JOB_FILE)
        if saved is None:
            return
        before = await self.status(attempt_dir) if saved.get("started") else None
        if before is not None and before.phase in (RunPhase.SETUP, RunPhase.RUN):
            saved["killed"] = True
            write_json(attempt_dir / JOB_FILE, saved)
        await self._provider.delete_job(str(saved["context"]), str(saved["job"]))

    async def aclose(self) -> None:
        return None
