"""Plain typed records shared by every part of skyd (no I/O, no skyd imports)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

MICROS_PER_DOLLAR = 1_000_000


def dollars_to_micros(value: str | Decimal | int) -> int:
    """Exact conversion of a decimal dollar amount (as written in a catalog) to micro-dollars."""
    return int((Decimal(value) * MICROS_PER_DOLLAR).to_integral_value())


def micros_to_dollars(micros: int) -> float:
    return micros / MICROS_PER_DOLLAR


class JobState(enum.StrEnum):
    PENDING = "PENDING"
    PROVISIONING = "PROVISIONING"
    SETTING_UP = "SETTING_UP"
    RUNNING = "RUNNING"
    RECOVERING = "RECOVERING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    FAILED_SETUP = "FAILED_SETUP"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {JobState.SUCCEEDED, JobState.FAILED, JobState.FAILED_SETUP, JobState.CANCELLED}
)

# The lifecycle graph. Anything not listed here is an illegal transition and is
# rejected by skyd.scheduler.lifecycle.
ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.PROVISIONING, JobState.CANCELLED, JobState.FAILED}),
    JobState.PROVISIONING: frozenset(
        {
            JobState.SETTING_UP,
            JobState.PENDING,  # launch failed everywhere for now: wait for capacity
            JobState.RECOVERING,
            JobState.FAILED,
            JobState.CANCELLED,
        }
    ),
    JobState.SETTING_UP: frozenset(
        {
            JobState.RUNNING,
            JobState.FAILED_SETUP,
            JobState.RECOVERING,
            JobState.CANCELLED,
            JobState.FAILED,
        }
    ),
    JobState.RUNNING: frozenset(
        {
            JobState.SUCCEEDED,
            JobState.FAILED,
            JobState.RECOVERING,
            JobState.CANCELLED,
        }
    ),
    JobState.RECOVERING: frozenset(
        {JobState.PROVISIONING, JobState.PENDING, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.FAILED_SETUP: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class InstanceState(enum.StrEnum):
    PENDING = "PENDING"  # requested, not yet running
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    PREEMPTED = "PREEMPTED"  # gone because the cloud took the spot capacity back


# Providers whose nodes are shared capacity (this host, lab machines, Slurm partitions,
# Kubernetes nodes): `cpus: N` / `memory: M` ask for that much of a node, as SkyPilot and
# these systems read it, rather than for an instance type of exactly that size.
POOL_CLOUDS = frozenset({"local", "ssh", "slurm", "kubernetes"})


@dataclass(frozen=True, slots=True)
class Amount:
    """A resource quantity from a task spec: `4` (exactly) or `4+` (at least)."""

    value: float
    or_more: bool = False

    def admits(self, offered: float, *, pool: bool = False) -> bool:
        """Whether a machine of `offered` size satisfies this ask. A cloud instance type
        must match it (`4` is exactly 4, as SkyPilot reads it); on a capacity pool
        (`POOL_CLOUDS`) the ask is a request out of the node, so any node that big fits."""
        if pool or self.or_more:
            return offered >= self.value
        return offered == self.value

    def __str__(self) -> str:
        text = f"{self.value:g}"
        return f"{text}+" if self.or_more else text


@dataclass(frozen=True, slots=True)
class Offer:
    """One launchable offering: an instance type in a region/zone with its list prices.

    Prices are integer micro-dollars per hour (exact, as written in the catalog);
    `None` means the cloud does not sell it that way (no spot market, or unpriced).
    """

    cloud: str
    region: str
    zone: str  # "" when the catalog has no zones (Azure, Lambda)
    instance_type: str
    accelerator_name: str  # "" for CPU-only
    accelerator_count: int
    vcpus: float
    memory_gib: float
    price_micros: int | None
    spot_price_micros: int | None

    @property
    def key(self) -> str:
        """Stable identity used for blocking, price history and plans."""
        return f"{self.cloud}/{self.region}/{self.zone}/{self.instance_type}"

    def hourly_micros(self, spot: bool) -> int | None:
        return self.spot_price_micros if spot else self.price_micros

    def hourly_price(self, spot: bool) -> float | None:
        micros = self.hourly_micros(spot)
        return None if micros is None else micros / MICROS_PER_DOLLAR

    def placement_fields(self) -> dict[str, Any]:
        """Where a placement record (a job's or a cluster's) says the offering is."""
        return {
            "offer_key": self.key,
            "cloud": self.cloud,
            "region": self.region,
            "zone": self.zone,
            "instance_type": self.instance_type,
            "accelerator_name": self.accelerator_name or None,
            "accelerator_count": self.accelerator_count,
        }


@dataclass(frozen=True, slots=True)
class OfferFilter:
    """What a job (one `any_of` alternative of it) accepts, as a catalog query.

    `accelerators` is an any-of set of (normalized name, count); empty = no accelerator
    requirement. `spot` None = either market. `blocked` holds scopes: a cloud
    (`aws`), a region (`aws/us-east-1`), a zone (`aws/us-east-1/use1-az2`) or an
    offer key.
    """

    accelerators: tuple[tuple[str, int], ...] = ()
    cpus: Amount | None = None
    memory_gib: Amount | None = None
    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    instance_type: str | None = None
    countries: tuple[str, ...] = ()
    spot: bool | None = None
    max_hourly_price_micros: int | None = None
    blocked: frozenset[str] = frozenset()
    # network_tier: best: only offerings skyd can give a faster network (catalog.network_tier)
    faster_network: bool = False


class ExclusionReason(enum.StrEnum):
    """Why a candidate offering was not chosen (shown by `skyctl optimize`)."""

    ACCELERATOR_MISMATCH = "accelerator_mismatch"
    RESOURCES_TOO_SMALL = "resources_mismatch"
    PINNED_ELSEWHERE = "pinned_elsewhere"
    COUNTRY_NOT_ALLOWED = "country_not_allowed"
    NO_SPOT_MARKET = "no_spot_market"
    NOT_PRICED = "not_priced"
    OVER_MAX_PRICE = "over_max_price"
    BLOCKED = "blocked"
    NO_QUOTA = "no_quota"
    OVER_BUDGET = "over_budget"
    NO_CREDIT = "no_credit"
    PROVIDER_DISABLED = "provider_disabled"
    DEADLINE = "deadline"  # spot: expected preemption overhead does not fit before the deadline
    # the job asked for no accelerator and an instance without one fits for less (or is free
    # but busy, and the job can wait): a GPU is not paid for, nor taken from jobs that need it
    UNREQUESTED_ACCELERATOR = "unrequested_accelerator"
    # num_nodes is more than the provider can hold at once (its slots, hosts or nodes of the
    # offer's shape): a gang never runs short of nodes
    TOO_FEW_NODES = "too_few_nodes"
    # network_tier: best, and skyd cannot give this offering a faster network
    NO_FASTER_NETWORK = "no_faster_network"


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the optimizer decided a job should run, and what it expects it to cost."""

    offer: Offer
    spot: bool
    hourly_price_micros: int
    expected_cost_micros: int
    expected_hours: float
    reason: str = ""
    egress_cost_micros: int = 0  # moving the job's data (part of expected_cost_micros)


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """What the core asks a provider to start. `client_token` makes a retry idempotent."""

    job_id: int
    attempt: int
    client_token: str
    offer: Offer
    spot: bool
    num_nodes: int = 1
    tags: dict[str, str] = field(default_factory=dict)
    disk_size_gib: int | None = None
    # wall-clock limit of the attempt (batch systems cancel it then); None: no limit asked
    time_limit_s: float | None = None
    # what the task asks of the machines beyond the offer (skyd.providers.extras maps them)
    container_image: str | None = None  # image_id: docker:IMAGE (the pod image on Kubernetes)
    ports: tuple[str, ...] = ()  # resources.ports: "8080" or "10000-10010", opened to all
    disk_tier: str | None = None
    network_tier: str | None = None
    # the task's `cpus` / `memory` ask: what a capacity pool (POOL_CLOUDS) hands each node
    # out of the offer's node; None: the task did not say (the provider's default share)
    cpus: float | None = None
    memory_gib: float | None = None


@dataclass(frozen=True, slots=True)
class Instance:
    """One machine a provider runs for skyd."""

    instance_id: str
    provider: str
    cloud: str
    region: str
    zone: str
    instance_type: str
    spot: bool
    state: InstanceState
    tags: dict[str, str] = field(default_factory=dict)
    public_ip: str | None = None
    private_ip: str | None = None
    launched_at: float | None = None
    # Who to log in as: the image's default user (AWS) or the user the launch delivered the
    # key for (GCE ssh-keys, Azure adminUsername). None: the provider does not say.
    ssh_user: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """An offering in one market (spot or on-demand) with its hourly price."""

    offer: Offer
    spot: bool
    hourly_price_micros: int

    @property
    def key(self) -> str:
        return f"{self.offer.key}/{'spot' if self.spot else 'ondemand'}"


# How an attempt's process is doing, as its runner reports it (this host or over SSH).
class RunPhase(enum.StrEnum):
    NOT_STARTED = "not_started"  # no shim ever ran setup for this attempt: safe to start one
    SETUP = "setup"
    RUN = "run"
    DONE = "done"
    KILLED = "killed"
    LOST = "lost"  # the shim vanished without recording an end (e.g. the OOM killer)


@dataclass(frozen=True, slots=True)
class RunStatus:
    phase: RunPhase
    setup_exit: int | None = None
    run_exit: int | None = None
    run_started_at: float | None = None
    ended_at: float | None = None
    pid: int | None = None
    # a gang's status: the node it is about (for a failure, the first node to fail)
    node: int | None = None

    @staticmethod
    def from_shim(data: Mapping[str, Any] | None, alive: bool) -> RunStatus:
        """What a shim's status record says (None: not written yet). A setup or run whose
        shim is no longer alive is LOST: it ended without recording how."""
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
