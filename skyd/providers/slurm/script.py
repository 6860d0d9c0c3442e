"""The sbatch script of one attempt, and the Slurm errors it can meet turned into skyd's."""

from __future__ import annotations

import math
import shlex

from skyd.errors import AuthError, CapacityError, ProviderError, QuotaError, TransientError

SHIM_NAME = "batch_shim.py"
SCRIPT_NAME = "job.sbatch"


def batch_script(
    *,
    job_name: str,
    comment: str,
    partition: str,
    nodes: int,
    cpus_per_node: int,
    gpu_type: str,
    gpus_per_node: int,
    time_limit_s: float | None,
    run_dir: str,
    python: str,
    memory_mb: int | None = None,
) -> str:
    """A batch script whose one step is the shim: the allocation waits for skyd's launch."""
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --comment={comment}",
        f"#SBATCH --partition={partition}",
        f"#SBATCH --nodes={nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --cpus-per-task={max(1, cpus_per_node)}",
        f"#SBATCH --chdir={run_dir}",
        f"#SBATCH --output={run_dir}/slurm-%j.out",
    ]
    if memory_mb:  # the task's `memory:`; without it Slurm's default share of the node
        lines.append(f"#SBATCH --mem={memory_mb}M")
    if gpus_per_node:
        kind = f"{gpu_type}:" if gpu_type else ""
        lines.append(f"#SBATCH --gres=gpu:{kind}{gpus_per_node}")
    if time_limit_s:
        lines.append(f"#SBATCH --time={max(1, math.ceil(time_limit_s / 60))}")
    shim = shlex.quote(f"{run_dir}/{SHIM_NAME}")
    lines += [
        "",
        "# skyd: the attempt's setup and run arrive as launch.json once this allocation runs",
        f"exec {shlex.quote(python)} {shim} {shlex.quote(run_dir)}",
        "",
    ]
    return "\n".join(lines)


def time_limit_minutes(seconds: float) -> int:
    return max(1, math.ceil(seconds / 60))


# sbatch's refusals, by the words Slurm uses (slurm_errno strings, stable across releases).
_CAPACITY = (
    "requested node configuration is not available",
    "node count specification invalid",
    "requested partition configuration not available",
    "more processors requested than permitted",
)
_QUOTA = (
    "job violates accounting/qos policy",
    "qosmaxsubmitjobperuserlimit",
    "assocmaxsubmitjoblimit",
    "maxsubmitjobs",
    "job limit",
)
_REFUSED = (
    "invalid partition name",
    "invalid account",
    "access/permission denied",
    "access denied",
    "invalid generic resource",
    "invalid qos",
    "user's group not permitted",
)
_UNREACHABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "connection refused",
    "slurm temporarily unable to accept job",
    "communication connection failure",
)


def sbatch_error(stderr: str, *, cluster: str, partition: str) -> ProviderError:
    """sbatch's message → the error whose scope the core blocks (zone = partition)."""
    message = " ".join(stderr.split()) or "sbatch failed without a message"
    lower = message.lower()
    zone = f"slurm/{cluster}/{partition}"
    said = f"Slurm cluster {cluster} refused the job: {message}"
    if any(words in lower for words in _UNREACHABLE):
        return TransientError(f"Slurm cluster {cluster} did not answer: {message}", scope=zone)
    if any(words in lower for words in _CAPACITY):
        return CapacityError(said, scope=zone)
    if any(words in lower for words in _QUOTA):
        return QuotaError(said, scope=f"slurm/{cluster}")
    if any(words in lower for words in _REFUSED):
        # wrong partition / account / GRES: the lab's setup, not a passing state; blocked
        # for long, named in the job's events with Slurm's own words
        return AuthError(said, scope=zone)
    return ProviderError(said, scope=zone)
