"""The validated, immutable task record (`TaskSpec`) and its derived views for the core."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import replace

from pydantic import BaseModel, Field, ValidationError

from skyd.errors import SpecError, UnknownAcceleratorError
from skyd.model import OfferFilter
from skyd.spec.resources import STORED_MODEL, ResourcesSpec, keep_name
from skyd.spec.storage import StorageMode, StorageMount
from skyd.spec.upstream import UpstreamData
from skyd.spec.vocabulary import is_skypilot_accelerator

# Key of `TaskSpec.estimated_runtime` that applies to any accelerator (and to none).
ANY_ACCELERATOR = "*"
REDACTED = "<redacted>"
# providers whose own runners (pods, Slurm batch jobs) do not mount buckets yet: a task with
# bucket file_mounts is never placed there, rather than run without its data
NO_BUCKET_CLOUDS = frozenset({"kubernetes", "slurm"})
MOUNT_WITHOUT_FUSE = (
    "a FUSE mount (rclone mount) on machines where FUSE works; elsewhere (jobs on this host, "
    "nodes without /dev/fuse) copied before setup and written back when the job ends"
)


class RecoveryStrategy(enum.StrEnum):
    """How a managed job is recovered after a preemption or failure."""

    FAILOVER = "FAILOVER"  # retry in the same region first, then move on
    EAGER_NEXT_REGION = "EAGER_NEXT_REGION"  # move to another region right away (SkyPilot default)
    DEADLINE = "DEADLINE"  # skyd: choose spot/on-demand and place so the deadline is met


class Objective(enum.StrEnum):
    COST = "cost"
    TIME = "time"


class JobRecoverySpec(BaseModel):
    """`job_recovery`; strategy None means the default (see `TaskSpec.recovery_strategy`)."""

    model_config = STORED_MODEL

    strategy: RecoveryStrategy | None = None
    max_restarts_on_errors: int = Field(default=0, ge=0)


class GitWorkdir(BaseModel):
    """A git repository cloned as the job's workdir (`ref`: branch, tag or commit)."""

    model_config = STORED_MODEL

    url: str
    ref: str | None = None


class DeadlineSpec(BaseModel):
    """`deadline`: either relative to submission (`36h`) or an absolute time.

    Exactly one of `within_seconds` and `at_epoch` is set; `text` is what the file said.
    """

    model_config = STORED_MODEL

    text: str
    within_seconds: float | None = None
    at_epoch: float | None = None


class TaskSpec(BaseModel):
    """A batch job as the user described it, every notation resolved and checked.

    Paths (`workdir`, `file_mounts` values) are absolute when the task was parsed with a
    `base_dir`, and as written otherwise. `estimated_runtime` maps accelerator names (as
    written) to seconds, with `"*"` for a single estimate that applies to any.
    """

    model_config = STORED_MODEL

    name: str | None = None
    workdir: str | None = None
    workdir_git: GitWorkdir | None = None  # `workdir: {url, ref}`: cloned as the workdir
    num_nodes: int = Field(default=1, ge=1)
    # Everything the job's processes get, secrets included; `secret_names` says which
    # values are secrets (never shown: see `redacted_envs`).
    envs: Mapping[str, str] = Field(default_factory=dict)
    secret_names: tuple[str, ...] = ()
    setup: str | None = None
    run: str  # "" for a cluster task with only setup
    file_mounts: Mapping[str, str] = Field(default_factory=dict)
    # destination → bucket (plain `DEST: s3://…` mounts and SkyPilot storage objects)
    storage_mounts: Mapping[str, StorageMount] = Field(default_factory=dict)
    # SkyPilot's size hints, bucket URL → GB read (`inputs`) and written (`outputs`): priced
    # as egress by data-aware placement
    inputs: Mapping[str, float] = Field(default_factory=dict)
    # a pipeline stage's inputs from the stage before it, once that one ran (scheduler's)
    upstream: UpstreamData | None = None
    outputs: Mapping[str, float] = Field(default_factory=dict)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    job_recovery: JobRecoverySpec = Field(default_factory=JobRecoverySpec)
    deadline: DeadlineSpec | None = None
    estimated_runtime: Mapping[str, float] = Field(default_factory=dict)
    project: str | None = None
    priority: int = Field(default=0, ge=-100, le=100)
    objective: Objective = Objective.COST
    migrate: bool = False

    # -- storage -----------------------------------------------------------------

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> TaskSpec:
        """Inverse of `to_json`; a stored record that no longer validates is a SpecError."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or None
            raise SpecError(
                f"stored task spec is invalid at {where or 'top level'}: {first['msg']}",
                field=where,
            ) from None

    # -- what may be shown ---------------------------------------------------------

    def redacted_envs(self) -> dict[str, str]:
        """`envs` with every secret's value replaced, for show, --json, events and logs."""
        return {
            key: REDACTED if key in self.secret_names else value for key, value in self.envs.items()
        }

    def public_summary(self) -> dict[str, object]:
        """What `skyctl show` prints about the task: nothing secret."""
        resources = self.resources
        summary: dict[str, object] = {
            "num_nodes": self.num_nodes,
            "envs": self.redacted_envs(),
            "secrets": list(self.secret_names),
            "image": resources.image_id if isinstance(resources.image_id, str) else None,
            "ports": list(resources.ports),
            "disk_tier": resources.disk_tier,
            "network_tier": resources.network_tier,
            "workdir": self.workdir
            or (
                f"{self.workdir_git.url}@{self.workdir_git.ref or 'HEAD'}"
                if self.workdir_git
                else None
            ),
            "file_mounts": dict(self.file_mounts),
            "storage_mounts": {
                dest: {
                    "url": mount.url,
                    "mode": mount.mode.value,
                    "persistent": mount.persistent,
                    **({"note": MOUNT_WITHOUT_FUSE} if mount.mode is not StorageMode.COPY else {}),
                }
                for dest, mount in self.storage_mounts.items()
            },
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
        }
        return {key: value for key, value in summary.items() if value not in (None, [], {})}

    # -- views for the optimizer, scheduler and policy ---------------------------

    @property
    def is_ordered(self) -> bool:
        """True when `resources.ordered` was used: alternatives are tried in file order."""
        return bool(self.resources.ordered)

    @property
    def alternatives(self) -> tuple[ResourcesSpec, ...]:
        """The resource sets the job may run on (merged candidates, or `resources` itself)."""
        return self.resources.alternatives

    def offer_filters(
        self,
        normalize_accelerator: Callable[[str], str] = keep_name,
        runs_containers: frozenset[str] = frozenset(),
    ) -> list[OfferFilter]:
        """One catalog query per alternative, in file order.

        `normalize_accelerator` maps a name as written to the catalog's name; whatever
        it raises (e.g. UnknownAcceleratorError) propagates, except for a name SkyPilot
        knows that no loaded catalog offers: that one is kept and simply matches nothing.
        """

        def normalize(name: str) -> str:
            try:
                return normalize_accelerator(name)
            except UnknownAcceleratorError:
                if is_skypilot_accelerator(name):
                    return name
                raise

        filters = [alt.offer_filter(normalize) for alt in self.alternatives]
        if runs_containers:
            # host-process providers with a working container engine take docker images
            filters = [replace(f, blocked=f.blocked - runs_containers) for f in filters]
        if self.storage_mounts:
            filters = [replace(f, blocked=f.blocked | NO_BUCKET_CLOUDS) for f in filters]
        return filters

    @property
    def requests_accelerators(self) -> bool:
        return any(alt.accelerators for alt in self.alternatives)

    @property
    def recovery_strategy(self) -> RecoveryStrategy:
        """The strategy in force: the one written, else DEADLINE for a task with a
        deadline, else SkyPilot's default EAGER_NEXT_REGION."""
        if self.job_recovery.strategy is not None:
            return self.job_recovery.strategy
        if self.deadline is not None:
            return RecoveryStrategy.DEADLINE
        return RecoveryStrategy.EAGER_NEXT_REGION

    def deadline_at(self, submitted_at: float) -> float | None:
        """The deadline as seconds since the epoch, for a job submitted at `submitted_at`."""
        if self.deadline is None:
            return None
        if self.deadline.at_epoch is not None:
            return self.deadline.at_epoch
        return submitted_at + (self.deadline.within_seconds or 0.0)

    def estimated_hours(self, accelerator: str | None = None) -> float | None:
        """The user's runtime estimate on `accelerator` (matched case-insensitively),
        falling back to the single estimate; None when the file gives none that applies."""
        if accelerator is not None:
            wanted = accelerator.casefold()
            for name, seconds in self.estimated_runtime.items():
                if name.casefold() == wanted:
                    return seconds / 3600.0
        fallback = self.estimated_runtime.get(ANY_ACCELERATOR)
        return None if fallback is None else fallback / 3600.0


class PipelineSpec(BaseModel):
    """A multi-document task file: stages run one after another, each once the one before
    it SUCCEEDED (SkyPilot's chain DAG). A plain task file is a pipeline of one stage."""

    model_config = STORED_MODEL

    name: str | None = None
    stages: tuple[TaskSpec, ...]

    @property
    def is_pipeline(self) -> bool:
        return len(self.stages) > 1
