"""An attempt's process: its job directory, environment and mounts; start, poll and kill it,
on this host (ProcessRunner), over SSH on lab machines and cloud VMs (SshRunner), or inside
what its provider launched (a Slurm allocation, Kubernetes pods: the provider's runner)."""

from __future__ import annotations

import asyncio
import os
import pwd
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from skyd.config import Settings
from skyd.errors import ProviderError
from skyd.model import RunStatus
from skyd.providers.base import (
    TAG_TOKEN,
    AttemptRunner,
    InstanceLister,
    Provider,
    RunsItsAttempts,
)
from skyd.providers.local.provider import node_instance_id
from skyd.runner import bucket_traffic
from skyd.runner.bucket_traffic import BucketTraffic
from skyd.runner.engines import working_engine
from skyd.runner.process import ProcessRunner, RunCommand, read_status
from skyd.runner.ssh import SshRunner
from skyd.runner.ssh_node import cloud_nodes, ssh_nodes
from skyd.runner.ssh_status import combine
from skyd.scheduler.booting import with_launch_login
from skyd.scheduler.interfaces import ClusterTargets, NoClusters
from skyd.spec import TaskSpec
from skyd.store import Store
from skyd.store import instances as instance_store
from skyd.store.records import JobRecord
from skyd.store.sealing import open_envs

REMOTE_PROVIDERS = frozenset({"ssh", "aws", "gcp", "azure"})


def mount_target(cwd: Path, job_dir: Path, dest: str) -> Path:
    """Where a file mount lands on this host: `~/x` and `x` in the job's workdir,
    `/abs/x` under the job's private `mounts/` tree (never the host's real /abs)."""
    if dest.startswith("~/"):
        return cwd / dest[2:]
    if dest.startswith("/"):
        return job_dir / "mounts" / dest.lstrip("/")
    return cwd / dest


def container_of(job: JobRecord, spec: TaskSpec) -> dict[str, Any] | None:
    """The container an attempt runs in (image_id: docker:IMAGE), GPUs passed through when
    its offer has any; None for a task without an image."""
    placement = job.placement or {}
    image = next((alt.docker_image for alt in spec.alternatives if alt.docker_image), None)
    if image is None:
        return None
    return {"image": image, "gpus": int(placement.get("accelerator_count") or 0) > 0}


class Processes:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        providers: Mapping[str, Provider],
        runner: ProcessRunner,
    ) -> None:
        self.settings = settings
        self.store = store
        self.providers = providers
        self.runner = runner
        self.ssh_runner: SshRunner | None = None  # set by the daemon when SSH is in use
        self.clusters: ClusterTargets = NoClusters()

    def job_dir(self, job_id: int) -> Path:
        return self.settings.jobs_dir / str(job_id)

    def log_path(self, job_id: int, rank: int = 0) -> Path:
        """Rank 0's output (and skyd's own lines); a local gang's rank K writes its own file."""
        name = "job.log" if rank == 0 else f"job.node-{rank}.log"
        return self.job_dir(job_id) / name

    def attempt_dir(self, job: JobRecord, rank: int = 0) -> Path:
        base = self.job_dir(job.id) / f"attempt-{job.attempt}"
        return base if rank == 0 else base / f"node-{rank}"

    def node_home(self, job_id: int, rank: int) -> Path:
        """Where rank K keeps its own workdir and mounts (rank 0: the job's directory), as
        each node of a real cluster has its own disk."""
        job_dir = self.job_dir(job_id)
        return job_dir if rank == 0 else job_dir / f"node-{rank}"

    @staticmethod
    def num_nodes(job: JobRecord) -> int:
        return TaskSpec.from_json(job.spec_json).num_nodes

    def runs_over_ssh(self, job: JobRecord) -> bool:
        """Whether the attempt runs away from this host (over SSH or in its provider)."""
        provider = (job.placement or {}).get("provider")
        return provider in REMOTE_PROVIDERS or self.own_runner(job) is not None

    def own_runner(self, job: JobRecord) -> AttemptRunner | None:
        """The runner of a provider whose instances run the attempt themselves."""
        provider = self.providers.get(str((job.placement or {}).get("provider")))
        return provider.attempt_runner if isinstance(provider, RunsItsAttempts) else None

    def prepare(self, job: JobRecord, spec: TaskSpec, rank: int = 0) -> RunCommand:
        """Make the job's directories and log (owned by the job's user when skyd may switch
        to it) and say what to run, where, with which environment (for node `rank` of a
        gang on this host)."""
        job_dir = self.node_home(job.id, rank)
        checkpoint_dir = self.settings.checkpoints_dir / str(job.id)
        for path in (self.job_dir(job.id), job_dir, checkpoint_dir):
            # private: the job's envs and output live here
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.chmod(0o700)
        log_file = self.log_path(job.id, rank)
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        log_file.chmod(0o600)
        may_switch = os.geteuid() == 0 or self.settings.local.run_as_owner
        run_as_other = may_switch and job.owner_uid != os.geteuid()
        uid = gid = None
        if run_as_other:
            try:
                entry = pwd.getpwuid(job.owner_uid)
            except KeyError:
                entry = None
            uid, gid = job.owner_uid, entry.pw_gid if entry else job.owner_uid
            for path in (job_dir, checkpoint_dir, log_file):
                os.chown(path, uid, gid)
        cwd = job_dir / "workdir"
        mounts = {
            str(mount_target(cwd, job_dir, dest)): src for dest, src in spec.file_mounts.items()
        }
        buckets = [
            {
                "url": mount.url,
                "dest": dest,
                "store": mount.store,
                "account": mount.account,
                "bucket": mount.bucket,
                "prefix": mount.prefix,
                "mode": mount.mode.value,
                "target": str(mount_target(cwd, job_dir, dest)),
                "owned": mount.owned,
                "persistent": mount.persistent,
                "source_local": mount.source_local,
            }
            for dest, mount in spec.storage_mounts.items()
        ]
        # the job's commands name /abs paths as SkyPilot's do: shown there (path_binds)
        path_binds = {
            dest: str(mount_target(cwd, job_dir, dest))
            for dest in [*spec.file_mounts, *spec.storage_mounts]
            if dest.startswith("/")
        }
        return RunCommand(
            setup=spec.setup,
            run=spec.run,
            cwd=cwd,
            env=self.job_env(job, spec, checkpoint_dir, cwd, rank),
            log_path=log_file,
            workdir_source=Path(spec.workdir) if spec.workdir else None,
            file_mounts=mounts,
            storage_mounts=buckets,
            workdir_git=spec.workdir_git.model_dump() if spec.workdir_git else None,
            container=container_of(job, spec),
            uid=uid,
            gid=gid,
            path_binds=path_binds,
        )

    async def start_local(self, job: JobRecord, spec: TaskSpec, command: RunCommand) -> None:
        """Start the attempt on this host: one shim per node (rank 0 runs `command`), each
        skipped when it already runs, so a start cut short is completed, never doubled."""
        if command.container is not None and await asyncio.to_thread(working_engine) is None:
            # placement keeps these jobs off a host without an engine; never run one bare
            raise ProviderError(
                f"image_id docker:{command.container['image']} needs a container engine "
                "(docker or podman) that answers on this host; it is not run bare"
            )
        commands = [command] + [self.prepare(job, spec, r) for r in range(1, spec.num_nodes)]
        commands = [
            replace(each, cpu_affinity=self._pinned_cpus(job, rank))
            for rank, each in enumerate(commands)
        ]
        for rank, each in enumerate(commands):
            attempt_dir = self.attempt_dir(job, rank)
            attempt_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            if each.uid is not None and each.gid is not None:
                os.chown(attempt_dir, each.uid, each.gid)
        for rank, each in enumerate(commands):
            await self.runner.start(self.attempt_dir(job, rank), each)

    def _pinned_cpus(self, job: JobRecord, rank: int) -> tuple[int, ...] | None:
        """The CPUs the local provider holds for rank `rank` of the job's attempt (a task
        that asked `cpus:`), or None: then the process may use every CPU of this host."""
        local = self.providers.get(str((job.placement or {}).get("provider")))
        pinned = getattr(local, "pinned_cpus", None)
        if pinned is None:
            return None
        tokens = {
            i.client_token
            for i in instance_store.instances_for_job(self.store, job.id)
            if i.attempt == job.attempt and i.provider == "local"
        }
        if len(tokens) != 1:
            return None
        nodes = TaskSpec.from_json(job.spec_json).num_nodes
        cpus = pinned(node_instance_id(tokens.pop(), rank, nodes))
        return tuple(cpus) if cpus else None

    async def _buckets_for_nodes(self, command: RunCommand) -> list[dict[str, Any]]:
        """Buckets the task names are created and filled from this host (where their local
        sources are) before the nodes mount them; raises ProviderError when that fails."""
        from skyd.runner.buckets import prepare_for_nodes  # the SDKs only for bucket jobs

        try:
            mounts, note = await asyncio.to_thread(
                prepare_for_nodes, command.storage_mounts, command.env
            )
        except Exception as exc:  # any store's SDK error: the job cannot have its data
            raise ProviderError(f"could not prepare the job's buckets: {exc}"[:500]) from exc
        if note:
            with open(command.log_path, "a") as log:
                log.write(note)
        return mounts

    async def start_remote(self, job: JobRecord, spec: TaskSpec, command: RunCommand) -> None:
        """Run the attempt over SSH: on lab machines, or on the cloud VMs it launched.
        Raises ProviderError when it cannot run there."""
        if spec.workdir_git is not None:
            raise ProviderError(
                f"a git workdir ({spec.workdir_git.url}) is cloned only for jobs on this host "
                f"(local) so far, not on {(job.placement or {}).get('provider')} instances"
            )
        # remote machines: mounts land where the task says, relative to the remote job dir
        remote = replace(
            command, file_mounts=dict(spec.file_mounts), uid=None, gid=None, path_binds=None
        )
        if command.storage_mounts:
            if self.own_runner(job) is not None:
                # placement keeps such tasks off these providers (NO_BUCKET_CLOUDS); never
                # run without the data if one gets here
                raise ProviderError(
                    f"bucket file_mounts are not mounted on "
                    f"{(job.placement or {}).get('provider')} jobs yet"
                )
            remote = replace(remote, storage_mounts=await self._buckets_for_nodes(command))
        attempt_dir = self.attempt_dir(job)
        attempt_dir.mkdir(parents=True, exist_ok=True)
        provider_name = str((job.placement or {}).get("provider"))
        provider = self.providers[provider_name]
        own = self.own_runner(job)
        if own is not None:
            ids = [
                i.instance_id
                for i in instance_store.instances_for_job(self.store, job.id)
                if i.attempt == job.attempt and i.provider == provider_name
            ]
            await own.start(attempt_dir, remote, ids)
            return
        if self.ssh_runner is None:
            raise ProviderError(f"no SSH runner for {provider_name} instances")
        if provider_name == "ssh":
            ids = [
                i.instance_id
                for i in instance_store.instances_for_job(self.store, job.id)
                if i.attempt == job.attempt and i.provider == "ssh"
            ]
            nodes = ssh_nodes(provider, ids)  # type: ignore[arg-type]
        else:
            login = self.settings.cloud_ssh
            if login.key_path is None:
                raise ProviderError(
                    f"jobs on {provider_name} need an SSH key to reach its VMs: set "
                    "[cloud_ssh] key_path (and user) in skyd's config"
                )
            if not isinstance(provider, InstanceLister):
                raise ProviderError(f"the {provider_name} provider cannot list its instances")
            token = f"skyd-{job.id}-{job.attempt}"
            found = sorted(
                await provider.instances({TAG_TOKEN: token}), key=lambda i: i.instance_id
            )
            records = {
                i.instance_id: i
                for i in instance_store.instances_for_job(self.store, job.id)
                if i.attempt == job.attempt
            }
            found = [
                with_launch_login(i, records[i.instance_id])
                for i in found
                if i.instance_id in records
            ]
            # the host keys pinned when skyd first reached each VM (scheduler.booting)
            pinned = {
                iid: str(r.data["host_key"]) for iid, r in records.items() if r.data.get("host_key")
            }
            nodes = cloud_nodes(
                found,
                user=login.user,
                key_path=Path(login.key_path),
                known_hosts=login.known_hosts,
                remote_root=login.remote_root,
                host_keys=pinned,
                port=login.port,
            )
        await self.ssh_runner.start(attempt_dir, remote, nodes, provider=provider_name)

    async def status(self, job: JobRecord) -> RunStatus:
        own = self.own_runner(job)
        if own is not None:
            return await own.status(self.attempt_dir(job))
        if self.runs_over_ssh(job) and self.ssh_runner is not None:
            return await self.ssh_runner.status(self.attempt_dir(job))
        nodes = self.num_nodes(job)
        if nodes == 1:
            return read_status(self.attempt_dir(job))
        # a gang: the first node to fail fails it (the scheduler then kills the others)
        return combine([read_status(self.attempt_dir(job, r)) for r in range(nodes)])

    def bucket_traffic(self, job: JobRecord) -> list[BucketTraffic]:
        """The bytes the attempt's buckets moved so far, per node (its report files)."""
        if self.runs_over_ssh(job):
            return bucket_traffic.read_remote(self.attempt_dir(job))
        nodes = self.num_nodes(job) if self.attempt_dir(job, 1).is_dir() else 1
        found = [
            bucket_traffic.read_local(self.attempt_dir(job, rank), rank, "")
            for rank in range(nodes)
        ]
        if not any(found):
            return []  # most jobs: no buckets, so no look at the store at every poll
        tokens = {
            i.client_token
            for i in instance_store.instances_for_job(self.store, job.id)
            if i.attempt == job.attempt and i.provider == "local"
        }
        if len(tokens) != 1:
            return []  # no slot of this host holds the attempt: nothing to charge it to
        token = tokens.pop()
        return [
            replace(traffic, instance_id=node_instance_id(token, rank, nodes))
            for rank, reported in enumerate(found)
            for traffic in reported
        ]

    async def kill(self, job: JobRecord, grace: float) -> None:
        own = self.own_runner(job)
        if own is not None:
            await own.kill(self.attempt_dir(job), grace)
        elif self.runs_over_ssh(job) and self.ssh_runner is not None:
            await self.ssh_runner.kill(self.attempt_dir(job), grace)
        else:
            nodes = self.num_nodes(job)
            if nodes > 1:
                # the rest of a gang whose rank failed get SIGTERM and the grace to stop
                # (the kill ends as soon as their groups are gone)
                grace = grace or self.settings.local.cancel_grace_seconds
            await asyncio.gather(
                *(self.runner.kill(self.attempt_dir(job, r), grace) for r in range(nodes))
            )

    def job_env(
        self, job: JobRecord, spec: TaskSpec, checkpoint_dir: Path, cwd: Path, rank: int = 0
    ) -> dict[str, str]:
        try:
            home = pwd.getpwuid(job.owner_uid).pw_dir
        except KeyError:
            home = str(cwd)
        ips = "\n".join(["127.0.0.1"] * spec.num_nodes)
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "HOME": home,
            "USER": job.owner_name,
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "SKYD_JOB_ID": str(job.id),
            "SKYD_JOB_NAME": job.name,
            "SKYD_ATTEMPT": str(job.attempt),
            "SKYD_CHECKPOINT_DIR": str(checkpoint_dir),
            # every node of a gang on this host is reached at the loopback address; remote
            # runners put each node's own rank and address over these
            "SKYD_NODE_RANK": str(rank),
            "SKYD_NUM_NODES": str(spec.num_nodes),
            "SKYD_NODE_IPS": ips,
            # SkyPilot's names (its NODE_IPS is newline-separated), so its scripts run unchanged
            "SKYPILOT_NODE_RANK": str(rank),
            "SKYPILOT_NUM_NODES": str(spec.num_nodes),
            "SKYPILOT_NODE_IPS": ips,
            "SKYPILOT_TASK_ID": f"skyd-{job.id}-{job.attempt}",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.clusters.job_env(job.id))
        env.update(open_envs(spec.envs))  # stored sealed (skyd/store/sealing.py)
        return env
