"""The fake cluster's nodes: pods scheduled by their resource limits, each run as a local process.

A pod's one liberty against a real kubelet: processes share this host's filesystem, so a
configMap volume is a directory under the fake's root, and any env value that starts with
a volume's mountPath is rewritten to that directory (there is no mount namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyd.testing.fake_kube.objects import Obj, ObjectStore, now_rfc3339

GPU = "nvidia.com/gpu"


@dataclass(frozen=True, slots=True)
class FakeNode:
    name: str
    cpus: int = 4
    memory_gib: int = 16
    gpus: int = 0
    gpu_product: str = ""

    def to_object(self) -> Obj:
        capacity = {"cpu": str(self.cpus), "memory": f"{self.memory_gib}Gi", "pods": "110"}
        labels = {"kubernetes.io/hostname": self.name}
        if self.gpus:
            capacity[GPU] = str(self.gpus)
            labels["nvidia.com/gpu.product"] = self.gpu_product
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels, "resourceVersion": "1"},
            "status": {
                "capacity": capacity,
                "allocatable": dict(capacity),
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            },
        }


def _cpu(value: str) -> float:
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


def _limits(pod: Obj) -> tuple[float, int]:
    cpus, gpus = 0.0, 0
    for container in pod["spec"]["containers"]:
        limits = (container.get("resources") or {}).get("limits") or {}
        cpus += _cpu(str(limits.get("cpu", "0")))
        gpus += int(str(limits.get(GPU, "0")))
    return cpus, gpus


class FakeKubelet:
    """Binds pods to nodes with room for their limits and runs their first container."""

    def __init__(self, store: ObjectStore, nodes: list[FakeNode], root: Path) -> None:
        self.store = store
        self.nodes = nodes
        self.root = root
        self.procs: dict[str, asyncio.subprocess.Process] = {}  # pod uid → process
        self.on_pod_end: Callable[[Obj], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def pod_dir(self, pod: Obj) -> Path:
        return self.root / "pods" / str(pod["metadata"]["uid"])

    def log_path(self, pod: Obj) -> Path:
        return self.pod_dir(pod) / "container.log"

    def _used(self, node: str) -> tuple[float, int]:
        cpus, gpus = 0.0, 0
        for pod in self.store.select("Pod", None):
            if pod["spec"].get("nodeName") == node and pod["status"]["phase"] in (
                "Pending",
                "Running",
            ):
                c, g = _limits(pod)
                cpus, gpus = cpus + c, gpus + g
        return cpus, gpus

    def _fits(self, node: FakeNode, pod: Obj) -> bool:
        selector = pod["spec"].get("nodeSelector") or {}
        labels = node.to_object()["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in selector.items()):
            return False
        cpus, gpus = _limits(pod)
        used_cpus, used_gpus = self._used(node.name)
        return used_cpus + cpus <= node.cpus and used_gpus + gpus <= node.gpus

    def schedule_pending(self) -> None:
        for pod in self.store.select("Pod", None):
            if pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName"):
                self.schedule(pod)

    def schedule(self, pod: Obj) -> None:
        node = next((n for n in self.nodes if self._fits(n, pod)), None)
        if node is None:
            _, gpus = _limits(pod)
            pod["status"]["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": f"0/{len(self.nodes)} nodes are available: insufficient "
                    f"{'nvidia.com/gpu' if gpus else 'cpu'} or no node matches the selector",
                    "lastTransitionTime": now_rfc3339(),
                }
            ]
            self.store.modified("Pod", pod)
            return
        pod["spec"]["nodeName"] = node.name
        pod["status"]["conditions"] = [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}
        ]
        self.store.modified("Pod", pod)
        task = asyncio.get_running_loop().create_task(self._run(pod))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def materialize(self, pod: Obj) -> dict[str, Path]:
        """Write the pod's configMap volumes; returns mountPath → local directory."""
        mounts: dict[str, Path] = {}
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        namespace = pod["metadata"]["namespace"]
        for container in pod["spec"]["containers"][:1]:
            for mount in container.get("volumeMounts") or []:
                volume = volumes.get(mount["name"]) or {}
                local = self.pod_dir(pod) / "volumes" / mount["name"]
                local.mkdir(parents=True, exist_ok=True)
                source = volume.get("configMap")
                if source:
                    config = self.store.get("ConfigMap", namespace, source["name"])
                    for key, text in ((config or {}).get("data") or {}).items():
                        tmp = local / f".{key}.tmp"
                        tmp.write_text(text)
                        os.replace(tmp, local / key)
                mounts[mount["mountPath"]] = local
        return mounts

    def config_map_changed(self, namespace: str, name: str) -> None:
        for pod in self.store.select("Pod", namespace):
            uses = any(
                (v.get("configMap") or {}).get("name") == name
                for v in pod["spec"].get("volumes") or []
            )
            if uses and pod["status"]["phase"] == "Running":
                self.materialize(pod)

    def _env(self, container: Obj, mounts: dict[str, Path]) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/root"}
        for item in container.get("env") or []:
            value = str(item.get("value", ""))
            for mount_path, local in mounts.items():
                if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                    value = str(local) + value[len(mount_path.rstrip("/")) :]
            env[item["name"]] = value
        return env

    async def _run(self, pod: Obj) -> None:
        self.pod_dir(pod).mkdir(parents=True, exist_ok=True)
        with open(self.log_path(pod), "ab") as log:
            code = await self._process(pod, log)
        if code is not None and pod["status"]["phase"] == "Running":
            code = code if code >= 0 else 128 - code
            self._ended(pod, code, "Completed" if code == 0 else "Error")

    async def _process(self, pod: Obj, log: Any) -> int | None:
        """Start the pod's container as a process and wait for it; None if it never ran."""
        container = pod["spec"]["containers"][0]
        mounts = self.materialize(pod)
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=self._env(container, mounts),
                cwd=self.pod_dir(pod),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._ended(pod, 128, f"StartError: {exc}")
            return None
        uid = pod["metadata"]["uid"]
        self.procs[uid] = proc
        pod["status"].update(
            phase="Running",
            podIP="127.0.0.1",
            hostIP="127.0.0.1",
            startTime=now_rfc3339(),
            containerStatuses=[_container_status(container, {"running": {}}, ready=True)],
        )
        pod["status"]["conditions"].append(
            {"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339()}
        )
        self.store.modified("Pod", pod)
        try:
            return await proc.wait()
        finally:
            self.procs.pop(uid, None)

    def _ended(self, pod: Obj, code: int, reason: str) -> None:
        container = pod["spec"]["containers"][0]
        pod["status"]["phase"] = "Succeeded" if code == 0 else "Failed"
        state = {"terminated": {"exitCode": code, "reason": reason, "finishedAt": now_rfc3339()}}
        pod["status"]["containerStatuses"] = [_container_status(container, state, ready=False)]
        if self.store.get("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"]):
            self.store.modified("Pod", pod)
        if self.on_pod_end is not None:
            self.on_pod_end(pod)
        self.schedule_pending()

    def kill(self, pod: Obj) -> None:
        proc = self.procs.pop(pod["metadata"]["uid"], None)
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def evict(self, pod: Obj, reason: str) -> None:
        """What a disruption (eviction, preemption, node drain) does to a pod."""
        pod["status"].setdefault("conditions", []).append(
            {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": reason,
                "message": "Eviction API: evicting",
                "lastTransitionTime": now_rfc3339(),
            }
        )
        was_running = pod["status"]["phase"] == "Running"
        self.kill(pod)
        if was_running or pod["status"]["phase"] == "Pending":
            self._ended(pod, 137, "Error")

    async def aclose(self) -> None:
        for uid in list(self.procs):
            proc = self.procs.pop(uid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        # the killed processes end at once: let each pod's task reap its own
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _container_status(container: Obj, state: dict[str, Any], *, ready: bool) -> Obj:
    return {
        "name": container["name"],
        "image": container.get("image", ""),
        "imageID": "",
        "ready": ready,
        "restartCount": 0,
        "state": state,
    }
