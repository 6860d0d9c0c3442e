"""A fake Kubernetes cluster on loopback (skyd.testing.fake_kube) and a provider that reaches it
through a kubeconfig found by the standard chain ($KUBECONFIG)."""

from __future__ import annotations

from pathlib import Path

from skyd.clock import SystemClock
from skyd.model import InstanceState, LaunchRequest, Offer, RunStatus
from skyd.providers.base import job_tags
from skyd.providers.kubernetes import KubernetesConfig, KubernetesProvider, KubernetesRunner
from skyd.runner.process import RunCommand
from skyd.testing import polling
from skyd.testing.fake_kube.kubelet import FakeNode
from skyd.testing.fake_kube.server import FakeKubeServer

CONTEXT = "fake"
# Pods are real local processes; this only bounds how long a test waits for them.
WAIT_LIMIT_S = 30.0
NODES = [
    FakeNode("cpu-1", cpus=4, memory_gib=16),
    FakeNode("gpu-1", cpus=8, memory_gib=64, gpus=2, gpu_product="NVIDIA-A100-SXM4-80GB"),
    FakeNode("gpu-2", cpus=8, memory_gib=64, gpus=2, gpu_product="NVIDIA-A100-SXM4-80GB"),
]


async def start_cluster(root: Path) -> FakeKubeServer:
    server = FakeKubeServer(root / "kube", list(NODES))
    await server.start()
    return server


async def make_provider(**settings: object) -> KubernetesProvider:
    values: dict[str, object] = {"contexts": [CONTEXT], "image": "python:3.12-slim"}
    values.update(settings)
    provider = KubernetesProvider(KubernetesConfig.from_mapping(values), SystemClock())
    await provider.refresh()
    return provider


def offer_of(provider: KubernetesProvider, gpus: int, gpu: str = "A100") -> Offer:
    return next(
        o
        for o in provider.offers()
        if o.accelerator_count == gpus and (not gpus or o.accelerator_name == gpu)
    )


def request(offer: Offer, job: int, *, nodes: int = 1, daemon: str = "skyd-test") -> LaunchRequest:
    token = f"skyd-{job}-1"
    return LaunchRequest(job, 1, token, offer, False, nodes, job_tags(daemon, job, 1, token))


async def until_states(
    provider: KubernetesProvider, ids: list[str], want: set[InstanceState]
) -> dict[str, InstanceState]:
    return await polling.until_states(provider, ids, want, limit_s=WAIT_LIMIT_S, every_s=0.1)


async def until_over(runner: KubernetesRunner, attempt_dir: Path) -> RunStatus:
    return await polling.until_phase(
        runner, attempt_dir, polling.OVER, limit_s=WAIT_LIMIT_S, every_s=0.1
    )


def command(attempt_dir: Path, run: str, setup: str | None = None) -> RunCommand:
    attempt_dir.mkdir(parents=True, exist_ok=True)
    return RunCommand(
        setup=setup,
        run=run,
        cwd=attempt_dir / "workdir",
        env={"SKYD_JOB_ID": "5", "PATH": "/nowhere", "GREETING": "it's me"},
        log_path=attempt_dir / "job.log",
    )
