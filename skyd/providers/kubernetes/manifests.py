"""The Kubernetes objects skyd creates (pure): an Indexed Job per attempt and its launch ConfigMap.

The Job's pods start a small bash program that waits for the attempt's launch ConfigMap
(mounted optional, so the pod starts without it), then runs setup and run with the rank
from JOB_COMPLETION_INDEX, printing marker lines the runner reads back from the pod log.
A pod that got a DisruptionTarget condition (eviction, preemption, drain) fails the whole
Job through a podFailurePolicy rule: the gang is lost together and skyd recovers it.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from typing import Any

LAUNCH_DIR = "/skyd/launch"
GPU_RESOURCE = "nvidia.com/gpu"
CONTAINER = "task"
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]")

# Marker lines of the pod log; the runner parses exactly these.
SETUP_STARTED = "--- skyd: setup started ---"
SETUP_EXITED = "--- skyd: setup exited with code "
RUN_STARTED = "--- skyd: run started ---"
RUN_EXITED = "--- skyd: run exited with code "

BOOT = f"""d="$SKYD_LAUNCH_DIR"
while [ ! -f "$d/run" ]; do sleep 1; done
set -a; . "$d/env"; set +a
rank="${{JOB_COMPLETION_INDEX:-0}}"
ips="$(cat "$d/ips")"
nodes="$(cat "$d/num_nodes")"
export SKYD_NODE_RANK="$rank" SKYPILOT_NODE_RANK="$rank"
export SKYD_NUM_NODES="$nodes" SKYPILOT_NUM_NODES="$nodes"
export SKYD_NODE_IPS="$ips" SKYPILOT_NODE_IPS="$ips"
mkdir -p skyd-workdir && cd skyd-workdir
echo "{SETUP_STARTED}"
rc=0
if [ -s "$d/setup" ]; then bash "$d/setup"; rc=$?; fi
echo "{SETUP_EXITED}$rc ---"
if [ "$rc" = 0 ]; then
  echo "{RUN_STARTED}"
  bash "$d/run"; rc=$?
  echo "{RUN_EXITED}$rc ---"
fi
exec sleep "${{SKYD_LINGER_S:-600}}"
"""


def job_name(token: str) -> str:
    """A DNS-1123 name for an attempt's Job (tokens are already `skyd-<job>-<attempt>`)."""
    name = re.sub(r"[^a-z0-9-]", "-", token.lower()).strip("-")
    return name[:52] or "skyd-job"  # room for the pods' "-<index>-<suffix>"


def label_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {k: _LABEL_VALUE.sub("-", v)[:63].strip("-_.") for k, v in tags.items()}


def selector(tags: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(label_tags(tags).items()))


def job_manifest(
    *,
    name: str,
    tags: Mapping[str, str],
    nodes: int,
    image: str,
    gpus: int,
    gpu_label: str,
    gpu_product: str,
    time_limit_s: float | None,
    linger_s: float,
    cpus: float | None = None,
    memory_gib: float | None = None,
) -> dict[str, Any]:
    labels = label_tags(tags)
    # the task's `cpus:` / `memory:` out of the node (one CPU when it asks for none)
    limits = {"cpu": f"{cpus:g}" if cpus else "1"}
    if memory_gib:
        limits["memory"] = f"{math.ceil(memory_gib * 1024)}Mi"
    if gpus:
        limits[GPU_RESOURCE] = str(gpus)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": CONTAINER,
                "image": image,
                "command": ["/bin/bash", "-c", BOOT],
                "env": [
                    {"name": "SKYD_LAUNCH_DIR", "value": LAUNCH_DIR},
                    {"name": "SKYD_LINGER_S", "value": str(int(linger_s))},
                ],
                "resources": {"limits": limits, "requests": dict(limits)},
                "volumeMounts": [{"name": "skyd-launch", "mountPath": LAUNCH_DIR}],
            }
        ],
        "volumes": [
            {"name": "skyd-launch", "configMap": {"name": f"{name}-launch", "optional": True}}
        ],
    }
    if gpus and gpu_product:
        pod_spec["nodeSelector"] = {gpu_label: gpu_product}
    spec: dict[str, Any] = {
        "completions": nodes,
        "parallelism": nodes,
        "completionMode": "Indexed",
        "backoffLimit": 0,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                }
            ]
        },
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    if time_limit_s:
        spec["activeDeadlineSeconds"] = int(time_limit_s)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def launch_config_map(
    *,
    name: str,
    labels: Mapping[str, str],
    setup: str | None,
    run: str | None,
    env: Mapping[str, str],
    ips: list[str],
) -> dict[str, Any]:
    exports = "".join(f"{k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-launch", "labels": label_tags(labels)},
        "data": {
            "setup": setup or "",
            "run": run or "true",
            "env": exports,
            "ips": "\n".join(ips),
            "num_nodes": str(len(ips)),
        },
    }


def disrupted(pod: Any) -> bool:
    """Evicted, preempted or drained: the pod carries a true DisruptionTarget condition."""
    conditions = pod.status.conditions or [] if pod.status else []
    if any(c.type == "DisruptionTarget" and c.status == "True" for c in conditions):
        return True
    return bool(pod.status and pod.status.reason in ("Evicted", "Preempting"))
