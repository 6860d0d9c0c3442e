"""The `slurm` provider: a lab's Slurm partitions as offerings; a Slurm job plays a gang of VMs.

Offers come from `sinfo` (per partition and node shape: CPUs, memory, GPU GRES) at the
lab's internal price, read by `refresh()` (the daemon calls it before placing anything).
`launch` writes a batch script and `sbatch`es it: job name = the attempt's client token,
comment = skyd's tags, `--nodes` = the gang size, `--gres=gpu:TYPE:K`, `--time` from the
request. The allocation then waits for the runner (SlurmRunner) to hand it setup and run.
Each node of the job is one Instance (`slurm.<cluster>.<jobid>.<rank>`), so a gang is N
instances that share one Slurm job and one fate.

States come from `squeue --me --states=all` (finished jobs stay listed for Slurm's
MinJobAge; sacct is not needed): PREEMPTED / NODE_FAIL / a requeue (restart count > 0)
are PREEMPTED, so skyd's recovery runs; a job Slurm no longer lists is TERMINATED.
Terminate = `scancel`. Reconcile finds skyd's jobs by the tags in their comments.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from skyd.clock import Clock
from skyd.errors import CapacityError, ProviderError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer
from skyd.providers.base import TAG_DAEMON, TAG_TOKEN, launch_tags
from skyd.providers.slurm import batch_shim
from skyd.providers.slurm.config import SlurmCluster, SlurmProviderConfig
from skyd.providers.slurm.parse import (
    SINFO_FIELDS,
    SQUEUE_FIELDS,
    SlurmJob,
    SlurmNode,
    encode_tags,
    format_option,
    instance_state,
    parse_sinfo,
    parse_squeue,
)
from skyd.providers.slurm.runner import SlurmJobRef, SlurmRunner
from skyd.providers.slurm.script import SCRIPT_NAME, SHIM_NAME, batch_script, sbatch_error
from skyd.providers.slurm.shell import LocalShell, SlurmShell, SshShell
from skyd.providers.ssh.connection import SshConnections, SshTarget

SLURM_CLOUD = "slurm"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeShape:
    """Nodes of one partition that look alike, and how many there are (the largest gang)."""

    partition: str
    cpus: int
    memory_mb: int
    gpu_type: str
    gpus: int
    count: int

    def instance_type(self, gpus: int) -> str:
        """The offer's name: the node shape plus the GPUs a job of it gets (an offering is
        keyed by its type, so each GPU count is a type of its own, as on the ssh pool)."""
        base = f"{self.partition}-{self.cpus}cpu-{self.memory_mb // 1024}gb"
        if gpus:
            return f"{base}-{self.gpu_type or 'gpu'}x{gpus}"
        return f"{base}-cpu" if self.gpus else base

    def instance_types(self) -> list[str]:
        return [self.instance_type(k) for k in range(self.gpus, -1, -1)]


def gpu_name(gres_type: str) -> str:
    """A GRES type as an accelerator name (`a100` → `A100`); untyped GPUs are `GPU`."""
    return gres_type.upper() if gres_type else "GPU"


def shapes_of(nodes: Sequence[SlurmNode], partitions: Sequence[str]) -> list[NodeShape]:
    counts: dict[tuple[str, int, int, str, int], int] = {}
    for node in nodes:
        if not node.usable or (partitions and node.partition not in partitions):
            continue
        gpu_type, gpus = max(node.gpus.items(), key=lambda kv: kv[1], default=("", 0))
        key = (node.partition, node.cpus, node.memory_mb, gpu_type, gpus)
        counts[key] = counts.get(key, 0) + 1
    return [NodeShape(*key, count=n) for key, n in sorted(counts.items())]


def shape_offers(cluster: SlurmCluster, shape: NodeShape) -> list[Offer]:
    """A node of the shape, per GPU count 1..all (a job asks an exact count), and CPU-only."""

    def offer(gpus: int) -> Offer:
        return Offer(
            cloud=SLURM_CLOUD,
            region=cluster.name,
            zone=shape.partition,
            instance_type=shape.instance_type(gpus),
            accelerator_name=gpu_name(shape.gpu_type) if gpus else "",
            accelerator_count=gpus,
            vcpus=float(shape.cpus),
            memory_gib=round(shape.memory_mb / 1024, 1),
            price_micros=cluster.price_for(shape.partition),
            spot_price_micros=None,
        )

    if not shape.gpus:
        return [offer(0)]
    offers = [offer(k) for k in range(shape.gpus, 0, -1)]
    return [*offers, offer(0)]


def instance_id(cluster: str, job_id: str, rank: int) -> str:
    return f"slurm.{cluster}.{job_id}.{rank}"


def parse_instance_id(iid: str) -> tuple[str, str, int] | None:
    parts = iid.split(".")
    if len(parts) != 4 or parts[0] != "slurm" or not parts[3].isdigit():
        return None
    return parts[1], parts[2], int(parts[3])


class SlurmProvider:
    name = SLURM_CLOUD

    def __init__(
        self,
        config: SlurmProviderConfig,
        clock: Clock,
        connections: SshConnections | None = None,
        *,
        shells: Mapping[str, SlurmShell] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self.connections = connections or SshConnections()
        self._owns_connections = connections is None
        self._shells: dict[str, SlurmShell] = dict(shells or {})
        for cluster in config.clusters:
            if cluster.name in self._shells:
                continue
            if cluster.login is None:
                self._shells[cluster.name] = LocalShell()
            else:
                login = cluster.login
                target = SshTarget(
                    cluster.name, login.host, login.port, login.user, login.key_path,
                    login.known_hosts,
                )  # fmt: skip
                self._shells[cluster.name] = SshShell(self.connections, target)
        self._offers: list[Offer] = []
        self._shapes: dict[tuple[str, str, str], NodeShape] = {}  # (cluster, zone, type)
        self._homes: dict[str, str] = {}
        self.refresh_errors: dict[str, str] = {}
        self._last_read: dict[str, list[NodeShape]] = {}  # cluster -> shapes it last answered
        self._runner: SlurmRunner | None = None
        self._squeue: dict[str, tuple[float, list[SlurmJob]]] = {}

    @property
    def attempt_runner(self) -> SlurmRunner:
        """Runs each attempt inside its allocation (the scheduler asks for it)."""
        if self._runner is None:
            self._runner = SlurmRunner(self)
        return self._runner

    @property
    def timeout(self) -> float:
        return self.config.command_timeout_s

    def shell(self, cluster: str) -> SlurmShell:
        shell = self._shells.get(cluster)
        if shell is None:
            raise ProviderError(f"no Slurm cluster named {cluster!r} is configured")
        return shell

    # -- offers ----------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read every cluster's partitions and nodes (at start, then every
        `offers_refresh_seconds`); a cluster that does not answer offers what it did when it
        last answered, or nothing (its error is kept in `refresh_errors` for `skyctl check`)."""
        offers: list[Offer] = []
        shapes: dict[tuple[str, str, str], NodeShape] = {}
        errors: dict[str, str] = {}
        for cluster in self.config.clusters:
            try:
                found = await self._node_shapes(cluster)
            except ProviderError as exc:
                errors[cluster.name] = exc.message
                log.warning("slurm cluster %s: %s", cluster.name, exc.message)
                # one that stops answering keeps what it offered (its controller may be
                # restarting; a running job's offering must not vanish); one never read
                # offers nothing until it answers
                found = self._last_read.get(cluster.name, [])
            else:
                self._last_read[cluster.name] = found
            for shape in found:
                for kind in shape.instance_types():
                    shapes[(cluster.name, shape.partition, kind)] = shape
                offers.extend(shape_offers(cluster, shape))
        self._offers, self._shapes, self.refresh_errors = offers, shapes, errors

    async def _node_shapes(self, cluster: SlurmCluster) -> list[NodeShape]:
        result = await self.shell(cluster.name).run(
            ["sinfo", "-h", "-N", "-O", format_option(SINFO_FIELDS)], timeout_s=self.timeout
        )
        if result.exit_status != 0:
            raise ProviderError(
                f"sinfo on cluster {cluster.name} failed: {result.stderr.strip()[:300]}",
                scope=f"{SLURM_CLOUD}/{cluster.name}",
            )
        return shapes_of(parse_sinfo(result.stdout), cluster.partitions)

    def offers(self) -> Sequence[Offer]:
        return list(self._offers)

    async def check(self) -> str:
        """`skyctl check`: sinfo on every cluster; what each offers, or why it cannot."""
        answers: list[str] = []
        failures: list[str] = []
        kind: type[ProviderError] = ProviderError  # the first failure's kind picks the fix
        for cluster in self.config.clusters:
            try:
                shapes = await self._node_shapes(cluster)
            except ProviderError as exc:
                kind = type(exc) if not failures else kind
                failures.append(f"cluster {cluster.name}: {exc.message}")
                continue
            per_partition: dict[str, int] = {}
            for shape in shapes:
                per_partition[shape.partition] = per_partition.get(shape.partition, 0) + shape.count
            listed = ", ".join(f"{p} ({n} nodes)" for p, n in sorted(per_partition.items()))
            answers.append(f"cluster {cluster.name}: partitions {listed or 'none usable'}")
        if failures:
            raise kind("; ".join(failures + answers))
        return "; ".join(answers) or "no clusters configured"

    def max_nodes(self, offer: Offer) -> int:
        """How many nodes of this offer's shape the partition has (the largest gang)."""
        shape = self._shapes.get((offer.region, offer.zone, offer.instance_type))
        return shape.count if shape else 0

    # -- jobs ------------------------------------------------------------------------

    async def _jobs(self, cluster: str, *, fresh: bool = False) -> list[SlurmJob]:
        """The account's jobs on `cluster`. One squeue answers every caller for
        `squeue_cache_s` (each running job is looked at every tick; clusters ask users not
        to poll their controller that hard); a launch or cancel asks afresh."""
        now = self._clock.now()
        cached = self._squeue.get(cluster)
        if not fresh and cached is not None and now - cached[0] < self.config.squeue_cache_s:
            return cached[1]
        result = await self.shell(cluster).run(
            ["squeue", "--me", "--states=all", "-h", "-O", format_option(SQUEUE_FIELDS)],
            timeout_s=self.timeout,
        )
        if result.exit_status != 0:
            raise ProviderError(
                f"squeue on cluster {cluster} failed: {result.stderr.strip()[:300]}",
                scope=f"{SLURM_CLOUD}/{cluster}",
            )
        jobs = parse_squeue(result.stdout)
        self._squeue[cluster] = (now, jobs)
        return jobs

    async def home(self, cluster: str) -> str:
        if cluster not in self._homes:
            self._homes[cluster] = await self.shell(cluster).home(timeout_s=self.timeout)
        return self._homes[cluster]

    async def run_dir(self, cluster: SlurmCluster, daemon: str, token: str) -> str:
        root = cluster.work_dir
        if not root.startswith("/"):
            root = f"{await self.home(cluster.name)}/{root.removeprefix('~/')}"
        return f"{root.rstrip('/')}/{daemon or 'skyd'}/{token}"

    def _instances_of(self, cluster: str, job: SlurmJob, *, spot: bool = False) -> list[Instance]:
        state = instance_state(job)
        zone = job.partition
        shape_type = job.tags.get("skyd-shape", "")
        return [
            Instance(
                instance_id=instance_id(cluster, job.job_id, rank),
                provider=self.name,
                cloud=SLURM_CLOUD,
                region=cluster,
                zone=zone,
                instance_type=shape_type,
                spot=spot,
                state=state,
                tags={k: v for k, v in job.tags.items() if k != "skyd-shape"},
                private_ip=None,
                launched_at=None,
            )
            for rank in range(job.num_nodes)
        ]

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        offer = request.offer
        cluster = self.config.cluster(offer.region)
        if offer.cloud != SLURM_CLOUD or cluster is None:
            raise ProviderError(
                f"{offer.key} is not an offer of a configured Slurm cluster", scope=offer.key
            )
        shape = self._shapes.get((cluster.name, offer.zone, offer.instance_type))
        zone = f"{SLURM_CLOUD}/{cluster.name}/{offer.zone}"
        if shape is None:
            raise CapacityError(
                f"partition {offer.zone} of {cluster.name} has no {offer.instance_type} nodes "
                "now (sinfo)",
                scope=zone,
            )
        if request.num_nodes > shape.count:
            raise CapacityError(
                f"partition {offer.zone} of {cluster.name} has {shape.count} "
                f"{offer.instance_type} nodes; {request.num_nodes} asked",
                scope=zone,
            )
        tags = launch_tags(request)
        daemon = tags.get(TAG_DAEMON, "")
        existing = [
            j
            for j in await self._jobs(cluster.name, fresh=True)
            if j.name == request.client_token
            and j.tags.get(TAG_DAEMON, "") == daemon
            # a job Slurm refused or that ended is kept in its records; it is no launch
            and instance_state(j) != InstanceState.TERMINATED
        ]
        if existing:  # a retried launch: the first one's job, never a second
            return self._instances_of(cluster.name, existing[0], spot=request.spot)
        run_dir = await self.run_dir(cluster, daemon, request.client_token)
        time_limit = request.time_limit_s or cluster.default_time_limit_minutes * 60.0
        script = batch_script(
            job_name=request.client_token,
            comment=encode_tags({**tags, "skyd-shape": offer.instance_type}),
            partition=offer.zone,
            nodes=request.num_nodes,
            # the task's `cpus:` out of the node (Slurm shares nodes); the whole node if unsaid
            cpus_per_node=math.ceil(request.cpus) if request.cpus else shape.cpus,
            memory_mb=math.ceil(request.memory_gib * 1024) if request.memory_gib else None,
            gpu_type=shape.gpu_type,
            gpus_per_node=offer.accelerator_count,
            time_limit_s=time_limit or None,
            run_dir=run_dir,
            python=cluster.python,
        )
        shell = self.shell(cluster.name)
        shim_source = _shim_source()
        await shell.write_text(f"{run_dir}/{SHIM_NAME}", shim_source, timeout_s=self.timeout)
        await shell.write_text(f"{run_dir}/{SCRIPT_NAME}", script, timeout_s=self.timeout)
        result = await shell.run(
            ["sbatch", "--parsable", f"{run_dir}/{SCRIPT_NAME}"], timeout_s=self.timeout
        )
        self._squeue.pop(cluster.name, None)  # even a refused job may be listed now
        if result.exit_status != 0:
            raise sbatch_error(result.stderr, cluster=cluster.name, partition=offer.zone)
        job_id = result.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise ProviderError(f"sbatch on {cluster.name} gave no job id: {result.stdout!r}")
        job = SlurmJob(
            job_id=job_id,
            name=request.client_token,
            state="PENDING",
            restarts=0,
            num_nodes=request.num_nodes,
            partition=offer.zone,
            nodes="",
            reason="",
            tags={**tags, "skyd-shape": offer.instance_type},
        )
        return self._instances_of(cluster.name, job, spot=request.spot)

    async def job_ref(self, iid: str) -> SlurmJobRef:
        """The Slurm job behind an instance, with its directory (for the runner)."""
        parsed = parse_instance_id(iid)
        cluster = self.config.cluster(parsed[0]) if parsed else None
        if parsed is None or cluster is None:
            raise ProviderError(f"{iid} is not an instance of a configured Slurm cluster")
        job = next((j for j in await self._jobs(cluster.name) if j.job_id == parsed[1]), None)
        if job is None:
            raise ProviderError(f"Slurm job {parsed[1]} of {cluster.name} is gone")
        token = job.tags.get(TAG_TOKEN, job.name)
        run_dir = await self.run_dir(cluster, job.tags.get(TAG_DAEMON, ""), token)
        return SlurmJobRef(cluster.name, job.job_id, run_dir, job.num_nodes)

    async def job_state(self, cluster: str, job_id: str) -> InstanceState:
        job = next((j for j in await self._jobs(cluster) if j.job_id == job_id), None)
        return instance_state(job) if job else InstanceState.TERMINATED

    # -- describe --------------------------------------------------------------------

    async def instances(self, tags: Mapping[str, str]) -> list[Instance]:
        found: list[Instance] = []
        for cluster in self.config.clusters:
            for job in await self._jobs(cluster.name):
                if not job.tags or any(job.tags.get(k) != v for k, v in tags.items()):
                    continue
                found.extend(self._instances_of(cluster.name, job))
        return found

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        if instance_ids is None:
            listed = await self.instances(tags or {})
            return {i.instance_id: i.state for i in listed}
        wanted: dict[str, list[tuple[str, str]]] = {}
        result: dict[str, InstanceState] = {}
        for iid in instance_ids:
            parsed = parse_instance_id(iid)
            if parsed is None or self.config.cluster(parsed[0]) is None:
                result[iid] = InstanceState.TERMINATED
                continue
            wanted.setdefault(parsed[0], []).append((iid, parsed[1]))
        for cluster, items in wanted.items():
            jobs = {j.job_id: j for j in await self._jobs(cluster)}
            for iid, job_id in items:
                job = jobs.get(job_id)
                result[iid] = instance_state(job) if job else InstanceState.TERMINATED
        return result

    # -- stop / start / terminate ----------------------------------------------------

    async def stop(self, instance_ids: Sequence[str]) -> None:
        raise ProviderError("a Slurm job cannot be stopped and kept; terminate it", scope=None)

    async def start(self, instance_ids: Sequence[str]) -> None:
        raise ProviderError("a Slurm job cannot be started again; launch a new one", scope=None)

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        by_cluster: dict[str, set[str]] = {}
        for iid in instance_ids:
            parsed = parse_instance_id(iid)
            if parsed is not None and self.config.cluster(parsed[0]) is not None:
                by_cluster.setdefault(parsed[0], set()).add(parsed[1])
        for cluster, job_ids in by_cluster.items():
            await self.cancel(cluster, sorted(job_ids, key=int))

    async def cancel(self, cluster: str, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        result = await self.shell(cluster).run(["scancel", *job_ids], timeout_s=self.timeout)
        self._squeue.pop(cluster, None)
        if result.exit_status != 0:
            text = result.stderr.lower()
            # gone already, or ending anyway: what terminate wanted
            if "invalid job id" in text or "already completing or completed" in text:
                return
            raise ProviderError(
                f"scancel {' '.join(job_ids)} on {cluster} failed: {result.stderr.strip()[:300]}",
                scope=f"{SLURM_CLOUD}/{cluster}",
            )

    async def aclose(self) -> None:
        if self._owns_connections:
            await self.connections.aclose()


def _shim_source() -> str:
    return Path(batch_shim.__file__).read_text()
