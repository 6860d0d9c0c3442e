"""Daemon settings: a TOML file plus environment overrides, and the paths derived from them."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from skyd.accounting.settings import AccountingSettings
from skyd.errors import SkydError


class ConfigError(SkydError):
    code = "invalid_config"


def default_socket_path() -> Path:
    """`$XDG_RUNTIME_DIR/skyd/skyd.sock` (user daemon) or `/run/skyd/skyd.sock` (system)."""
    if os.geteuid() != 0 and os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "skyd" / "skyd.sock"
    return Path("/run/skyd/skyd.sock")


def default_state_dir() -> Path:
    if os.environ.get("STATE_DIRECTORY"):  # set by systemd's StateDirectory=
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/skyd")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "skyd"


@dataclass
class LocalProviderSettings:
    """The `local` provider: jobs run as processes on this host."""

    enabled: bool = True
    slots: int = 0  # concurrent jobs; 0 = number of CPUs
    gpus: int = -1  # -1 = detect with nvidia-smi
    cancel_grace_seconds: float = 5.0
    # After the grace, how long a killed attempt (cancelled, moved, restarted, stopped by a
    # budget) may take to write what its job wrote back to its bucket file mounts; what is
    # not written back in time is named in the job's log. The kill waits this long at most.
    cancel_write_back_seconds: float = 300.0
    # Run each job as the user who submitted it. Needs root or CAP_SETUID/CAP_SETGID;
    # always on when the daemon runs as root.
    run_as_owner: bool = False


@dataclass
class MarketSettings:
    """Live market polling. Sources that cannot work here (no credentials) switch off once."""

    advisor_file: Path | None = None  # None: the shipped AWS spot advisor snapshot
    poll_aws_spot_prices: bool = False  # also on whenever the aws provider is enabled
    aws_endpoint_url: str = ""  # e.g. a private EC2 endpoint; "" = the public one
    aws_spot_interval_seconds: float = 600.0
    advisor_interval_seconds: float = 3600.0
    # How often offerings read from the lab's own systems (Slurm partitions, Kubernetes
    # nodes) are read again: a cluster down when skyd started is placed on once it answers.
    offers_refresh_seconds: float = 300.0


@dataclass
class SimProviderSettings:
    """The `sim` provider: a cloud whose spot market replays a recorded trace."""

    enabled: bool = False
    traces: Path | None = None  # a trace directory; None: the shipped catalogs/traces set
    speedup: float = 60.0  # trace seconds per clock second
    start_offset_seconds: float = 0.0  # where in the trace the replay starts
    provisioning_delay_seconds: float = 1.0


@dataclass
class CloudSshSettings:
    """How skyd logs in to the cloud VMs it launches to run jobs there. Without a key,
    jobs placed on clouds fail with that reason instead of trying to connect."""

    user: str = "skyd"
    key_path: Path | None = None
    known_hosts: Path | None = None
    remote_root: str = ".skyd"
    port: int = 22  # the VMs' sshd port (22 on every cloud image)
    # A VM whose sshd does not let skyd in this long after launch is terminated and its job
    # placed again (or failed after boot_tries such VMs).
    boot_timeout_s: float = 600.0
    boot_tries: int = 3
    # SSH probes of a booting VM back off from 1 s to this, with jitter.
    probe_backoff_max_s: float = 15.0
    # How often a running job's $SKYD_CHECKPOINT_DIR is looked at on its VM and, when it
    # changed, copied back. A copy out of a cloud bills egress: after one, the next waits as
    # long as it pays (egress against the work a preemption would lose; spot jobs without a
    # deadline, skyd.runner.pull_cadence), up to checkpoint_sync_max_s.
    checkpoint_sync_s: float = 10.0
    checkpoint_sync_max_s: float = 1800.0


@dataclass
class RecoverySettings:
    """Deadline-aware recovery: which policy decides, and what a changeover costs."""

    policy: str = "skyd"  # a name in skyd.policy.POLICIES
    # The least changeover the policy plans with: launch + boot + setup + work lost since
    # the last checkpoint. The daemon measures its launches (placement to run start, p90 of
    # the newest 20 on the job's clouds, + checkpoint_sync_s / 2 on SSH clouds) and plans
    # with that when it is longer (skyd.scheduler.changeover); this figure stays the floor.
    changeover_hours: float = 0.2
    # The spot availability history the policy learns run and outage lengths from: the
    # `history_hours` before a job was submitted and everything since (bench.spot shows the
    # simulator's policy a week the same way; 0 = no history), on a grid of
    # `history_step_seconds` (0 = the sim trace's probe interval on the daemon's clock
    # when the sim cloud is on, else 600 s). Observations older than `history_keep_days`
    # are pruned from the store.
    history_hours: float = 168.0
    history_step_seconds: float = 0.0
    history_keep_days: float = 30.0

    def validate(self) -> None:
        if not 0 <= self.history_hours <= 24 * 365:
            raise ConfigError(
                f"recovery.history_hours: {self.history_hours!r} must be between 0 and 8760"
                " (hours of spot availability before a job's submission its policy sees;"
                " 168 = a week, 0 = none)"
            )
        if self.history_step_seconds < 0:
            raise ConfigError(
                f"recovery.history_step_seconds: {self.history_step_seconds!r} must be >= 0"
                " (seconds between the history's samples; 0 = the sim trace's probe interval,"
                " else 600)"
            )
        if self.history_keep_days * 24 < self.history_hours or self.history_keep_days > 3650:
            raise ConfigError(
                f"recovery.history_keep_days: {self.history_keep_days!r} must cover"
                f" recovery.history_hours ({self.history_hours!r} h) and be at most 3650;"
                " e.g. 30"
            )


@dataclass
class PlacementSettings:
    """Which region wins when candidates are equally good (equal expected cost and time).

    `home_regions`: glob patterns, "cloud/region" or bare region ("aws/us-east-1",
    "us-east-*"), preferred in the order given; then regions in `home_countries` (ISO-3166
    alpha-2, looked up in catalogs/regions.csv); then the rest.
    """

    home_regions: list[str] = field(default_factory=list)
    home_countries: list[str] = field(default_factory=lambda: ["US"])

    def validate(self) -> None:
        for index, pattern in enumerate(self.home_regions):
            if not isinstance(pattern, str) or not pattern.strip():
                raise ConfigError(
                    f"placement.home_regions[{index}]: {pattern!r} is not a region pattern;"
                    ' write e.g. "aws/us-east-1" or "us-east-*"'
                )
        for index, code in enumerate(self.home_countries):
            if not isinstance(code, str) or len(code) != 2 or not code.isalpha():
                raise ConfigError(
                    f"placement.home_countries[{index}]: {code!r} is not an ISO-3166 alpha-2"
                    ' country code; write e.g. "US" or "DE"'
                )


@dataclass
class DataSettings:
    """Where a task's buckets live and how big they are (data-aware placement).

    `s3_endpoint_url`: S3 API endpoint for GetBucketLocation and listings ("" = AWS's, or
    $AWS_ENDPOINT_URL); `gcs_endpoint_url`: a GCS JSON API endpoint for bucket metadata
    ("" = no GCS lookups); `bucket_regions`: bucket URL → region, for buckets skyd cannot ask
    about (e.g. {"gs://lab-data" = "us-central1"}). Lookups give up after
    `lookup_timeout_seconds` and list at most `max_listed_objects` objects per bucket.
    """

    s3_endpoint_url: str = ""
    gcs_endpoint_url: str = ""
    bucket_regions: dict[str, str] = field(default_factory=dict)
    lookup_timeout_seconds: float = 5.0
    max_listed_objects: int = 100_000
    cache_seconds: float = 3600.0

    def validate(self) -> None:
        for name in ("s3_endpoint_url", "gcs_endpoint_url"):
            url = getattr(self, name)
            if url and not url.startswith(("http://", "https://")):
                raise ConfigError(f"data.{name}: {url!r} must start with http:// or https://")
        if not 0 < self.lookup_timeout_seconds <= 300:
            raise ConfigError(
                f"data.lookup_timeout_seconds: {self.lookup_timeout_seconds!r} must be in (0, 300]"
            )
        if not 0 <= self.max_listed_objects <= 10_000_000:
            raise ConfigError(
                f"data.max_listed_objects: {self.max_listed_objects!r} must be 0 to 10000000"
            )


@dataclass
class QuotaSetting:
    """One cloud quota the global plan must respect, e.g. 16 GPUs of aws/us-east-1."""

    name: str
    cloud: str
    resource: str  # gpus | vcpus | instances
    limit: int
    region: str | None = None
    spot: bool | None = None


@dataclass
class Settings:
    state_dir: Path = field(default_factory=default_state_dir)
    socket_path: Path = field(default_factory=default_socket_path)
    socket_mode: int = 0o660
    socket_group: str | None = None  # e.g. "skyd"; group of the socket file
    admin_group: str = "skyd-admin"
    shutdown_budget_seconds: float = 10.0
    # Prometheus /metrics is always on the socket; "[host]:port" also serves it (only it)
    # over TCP, the host defaulting to 127.0.0.1. "" = not over TCP.
    metrics_listen: str = ""
    catalog_dir: Path | None = None  # None: the shipped catalogs
    orphans: str = "terminate"  # what reconcile does with this daemon's unrecorded instances
    reconcile_interval_seconds: float = 300.0
    scheduler_tick_seconds: float = 1.0
    # how often the loop-lag monitor wakes (skyd.looplag): a stall shorter than this can be
    # missed, a longer one is reported to within it
    loop_lag_interval_seconds: float = 0.02
    local: LocalProviderSettings = field(default_factory=LocalProviderSettings)
    market: MarketSettings = field(default_factory=MarketSettings)
    sim: SimProviderSettings = field(default_factory=SimProviderSettings)
    recovery: RecoverySettings = field(default_factory=RecoverySettings)
    quotas: list[QuotaSetting] = field(default_factory=list)
    placement: PlacementSettings = field(default_factory=PlacementSettings)
    data: DataSettings = field(default_factory=DataSettings)
    solver_time_limit_seconds: float = 2.0
    # a task's workdir is copied for every job: larger ones (after .skyignore) are refused
    max_workdir_bytes: int = 1024**3
    # the `ssh` provider's machine pool, as written ([ssh] with [[ssh.hosts]]); checked by
    # skyd.providers.ssh.SshProviderConfig, which names the bad field
    ssh: dict[str, Any] = field(default_factory=dict)
    # cloud adapters, as written: [aws] / [gcp] / [azure] with `enabled = true` and the
    # fields of skyd.providers.<cloud>.config (checked there, errors name the field)
    # the lab's own clusters, as written: [slurm] with [[slurm.clusters]] (checked by
    # skyd.providers.slurm.SlurmProviderConfig) and [kubernetes] (checked by
    # skyd.providers.kubernetes.KubernetesConfig); errors name the field
    slurm: dict[str, Any] = field(default_factory=dict)
    kubernetes: dict[str, Any] = field(default_factory=dict)
    aws: dict[str, Any] = field(default_factory=dict)
    gcp: dict[str, Any] = field(default_factory=dict)
    azure: dict[str, Any] = field(default_factory=dict)
    cloud_ssh: CloudSshSettings = field(default_factory=lambda: CloudSshSettings())
    accounting: AccountingSettings = field(default_factory=AccountingSettings)
    log_format: str = "auto"  # auto (text on a terminal, JSON otherwise) | json | text
    log_level: str = "INFO"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "skyd.db"

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"

    @property
    def checkpoints_dir(self) -> Path:
        return self.state_dir / "checkpoints"


def _apply(target: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in fields(target)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}{key}: unknown setting; allowed: {', '.join(sorted(known))}")
        current = getattr(target, key)
        if key in ("ssh", "slurm", "kubernetes", "aws", "gcp", "azure") and isinstance(value, dict):
            setattr(target, key, value)
            continue
        if key == "quotas" and isinstance(value, list):
            parsed = []
            for index, item in enumerate(value):
                if not isinstance(item, dict):
                    raise ConfigError(f"{where}quotas[{index}]: expected a table")
                quota = QuotaSetting(name="", cloud="", resource="gpus", limit=0)
                _apply(quota, item, f"{where}quotas[{index}].")
                if quota.resource not in ("gpus", "vcpus", "instances") or quota.limit < 0:
                    raise ConfigError(
                        f"{where}quotas[{index}]: resource must be gpus, vcpus or instances and"
                        " limit >= 0"
                    )
                quota.name = quota.name or f"{quota.cloud}/{quota.region or '*'} {quota.resource}"
                parsed.append(quota)
            setattr(target, key, parsed)
            continue
        if isinstance(value, dict) and isinstance(current, dict):
            setattr(target, key, dict(value))  # a free-form table (e.g. stopped-instance rates)
            continue
        if isinstance(value, dict):
            if not hasattr(current, "__dataclass_fields__"):
                raise ConfigError(f"{where}{key}: expected a value, got a table")
            _apply(current, value, f"{where}{key}.")
        elif isinstance(current, Path):
            setattr(target, key, Path(value).expanduser())
        elif current is None:
            setattr(
                target,
                key,
                Path(value).expanduser()
                if key.endswith(("_dir", "_file", "_path")) or key == "known_hosts"
                else value,
            )
        elif not isinstance(value, type(current)):
            if isinstance(current, float) and isinstance(value, int):
                setattr(target, key, float(value))
                continue
            raise ConfigError(f"{where}{key}: expected {type(current).__name__}, got {value!r}")
        else:
            setattr(target, key, value)


def load_settings(
    config_file: Path | None = None,
    *,
    state_dir: Path | None = None,
    socket_path: Path | None = None,
) -> Settings:
    """Defaults, then the TOML file, then command-line overrides (highest)."""
    settings = Settings()
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {config_file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {config_file}: {exc}") from None
        _apply(settings, data, "")
    try:
        settings.accounting.validate()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    settings.placement.validate()
    settings.data.validate()
    settings.recovery.validate()
    if not 0.001 <= settings.loop_lag_interval_seconds <= 1.0:
        raise ConfigError(
            f"loop_lag_interval_seconds: {settings.loop_lag_interval_seconds!r} must be between"
            " 0.001 and 1 (seconds between the loop-lag monitor's wake-ups)"
        )
    refresh = settings.market.offers_refresh_seconds
    if not 1.0 <= refresh <= 86_400.0:
        raise ConfigError(
            f"market.offers_refresh_seconds: {refresh!r} must be between 1 and 86400 (how"
            " often Slurm partitions and Kubernetes nodes are read again; default 300)"
        )
    write_back = settings.local.cancel_write_back_seconds
    if not 1.0 <= write_back <= 86_400.0:
        raise ConfigError(
            f"local.cancel_write_back_seconds: {write_back!r} must be between 1 and 86400"
            " (how long a killed job's bucket write-back may take; default 300)"
        )
    ssh = settings.cloud_ssh
    if not 0.1 <= ssh.checkpoint_sync_s <= 3600.0:
        raise ConfigError(
            f"cloud_ssh.checkpoint_sync_s: {ssh.checkpoint_sync_s!r} must be between 0.1 and"
            " 3600 (seconds between looks at a running job's checkpoint; default 10)"
        )
    if not ssh.checkpoint_sync_s <= ssh.checkpoint_sync_max_s <= 86_400.0:
        raise ConfigError(
            f"cloud_ssh.checkpoint_sync_max_s: {ssh.checkpoint_sync_max_s!r} must be between"
            f" checkpoint_sync_s ({ssh.checkpoint_sync_s:g}) and 86400 (the longest wait after a"
            " checkpoint pull a cloud bills egress for; default 1800)"
        )
    if settings.orphans not in ("terminate", "report"):
        raise ConfigError(f"orphans: {settings.orphans!r} is not allowed; use terminate or report")
    if state_dir is not None:
        settings.state_dir = state_dir
    if socket_path is not None:
        settings.socket_path = socket_path
    return settings
