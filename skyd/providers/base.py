"""The provider Protocol every cloud / machine-pool adapter implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from skyd.model import Instance, InstanceState, LaunchRequest, Offer, RunStatus
from skyd.runner.process import RunCommand

# Tags skyd puts on every resource it creates, so reconcile can find them.
TAG_MANAGED = "skyd-managed"
# The one value of TAG_MANAGED: launches write it and reconcile / clusters query it, so a
# provider that wrote anything else would make its instances invisible (leaked, unbilled).
MANAGED = "1"
TAG_JOB = "skyd-job"
TAG_ATTEMPT = "skyd-attempt"
TAG_TOKEN = "skyd-token"
TAG_CLUSTER = "skyd-cluster"
# Which daemon launched it: reconcile only ever touches its own daemon's resources, so two
# lab servers sharing a cloud account never reap each other's instances.
TAG_DAEMON = "skyd-daemon"


def managed_tags() -> dict[str, str]:
    """The filter that finds everything skyd manages (what reconcile lists)."""
    return {TAG_MANAGED: MANAGED}


def job_tags(daemon_id: str, job_id: int, attempt: int, client_token: str) -> dict[str, str]:
    """The tags the scheduler asks for when it launches an attempt of a job."""
    return {
        TAG_MANAGED: MANAGED,
        TAG_DAEMON: daemon_id,
        TAG_JOB: str(job_id),
        TAG_ATTEMPT: str(attempt),
        TAG_TOKEN: client_token,
    }


def launch_tags(request: LaunchRequest) -> dict[str, str]:
    """The tags a provider puts on what it creates for `request`: the scheduler's own tags
    (daemon, cluster, …) plus skyd's bookkeeping ones, always with the values reconcile uses."""
    tags = dict(request.tags)
    tags.update(
        {
            TAG_MANAGED: MANAGED,
            TAG_JOB: str(request.job_id),
            TAG_ATTEMPT: str(request.attempt),
            TAG_TOKEN: request.client_token,
        }
    )
    return tags


@runtime_checkable
class NodeLimited(Protocol):
    """A provider with a fixed number of machines (slots, hosts, cluster nodes): how many
    nodes of `offer` one job can get at most (None: no limit skyd knows of)."""

    def max_nodes(self, offer: Offer) -> int | None: ...


@runtime_checkable
class Provider(Protocol):
    """Async adapter over one cloud or machine pool.

    Adapters translate their SDK's errors into skyd.errors.ProviderError subclasses
    (CapacityError, QuotaError, AuthError, PreemptedError, TransientError); the
    failover loop lives in the core, not here.
    """

    name: str

    def offers(self) -> Sequence[Offer]:
        """What this provider can launch (may defer to the shipped catalog)."""
        ...

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        """Start instances. Idempotent: a retried request with the same client_token
        returns the instances of the first call and never launches twice."""
        ...

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        """States of the given instances, or of all instances carrying `tags`.
        An instance that no longer exists is reported TERMINATED (or PREEMPTED)."""
        ...

    async def stop(self, instance_ids: Sequence[str]) -> None: ...

    async def start(self, instance_ids: Sequence[str]) -> None: ...

    async def terminate(self, instance_ids: Sequence[str]) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class InstanceLister(Protocol):
    """Providers that can list their instances with tags (reconcile uses it to adopt a
    launch that was never recorded, and to name an orphan's job)."""

    async def instances(self, tags: Mapping[str, str]) -> list[Instance]: ...


@runtime_checkable
class PlacementSweeper(Protocol):
    """Providers that create a placement resource per gang (an AWS placement group, a GCE
    resource policy, an Azure proximity placement group): delete those carrying `tags` that
    no live instance uses and no launch in flight holds, and say which. Reconcile calls it,
    so a crash between creating one and launching into it leaks nothing."""

    async def sweep_placement(self, tags: Mapping[str, str]) -> list[str]: ...


@runtime_checkable
class GangPlacer(Protocol):
    """Providers that pack a gang's machines close (placement group, compact policy): how
    this request's nodes are placed, or why they go without (the launch event says it)."""

    def placement_note(self, request: LaunchRequest) -> str: ...


@runtime_checkable
class OfferRefresher(Protocol):
    """Providers whose offerings are read from the system itself (Slurm partitions,
    Kubernetes nodes): the daemon awaits `refresh()` before it places anything."""

    async def refresh(self) -> None: ...


@runtime_checkable
class AttemptRunner(Protocol):
    """Runs an attempt on instances that cannot be logged in to (a batch system's allocation,
    a pod): start / status / kill by the local attempt directory, like the other runners."""

    async def start(
        self, attempt_dir: Path, command: RunCommand, instance_ids: Sequence[str]
    ) -> int: ...

    async def status(self, attempt_dir: Path) -> RunStatus: ...

    async def kill(self, attempt_dir: Path, grace_seconds: float) -> None: ...


@runtime_checkable
class RunsItsAttempts(Protocol):
    """Providers whose instances run the attempt themselves (slurm, kubernetes)."""

    @property
    def attempt_runner(self) -> AttemptRunner: ...
