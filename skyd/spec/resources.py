"""The normalized per-node resource request of a task (one `resources:` block or alternative)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from pydantic import BaseModel, ConfigDict, Field

from skyd.model import Amount, OfferFilter

STORED_MODEL = ConfigDict(frozen=True, extra="forbid", strict=True)
# Providers that run a job as plain processes on a host: a container image cannot be
# honoured there yet, so a task that asks for one is never placed on them.
HOST_PROCESS_CLOUDS = frozenset({"local", "ssh", "sim"})


def keep_name(name: str) -> str:
    return name


class AutostopSpec(BaseModel):
    """`resources.autostop`: stop (or tear down, with `down`) after this many idle minutes."""

    model_config = STORED_MODEL

    enabled: bool = True
    idle_minutes: int = Field(default=5, ge=0)
    down: bool = False


class ResourcesSpec(BaseModel):
    """What one node needs, with every notation already resolved.

    `accelerators` is an any-of set of (name as written, count). `use_spot` None means
    the file did not say, which SkyPilot reads as on-demand. `any_of` / `ordered` hold
    the alternatives already merged over this block's own fields (at most one of the
    two is non-empty, and alternatives have none of their own).
    """

    model_config = STORED_MODEL

    cloud: str | None = None
    region: str | None = None
    zone: str | None = None
    accelerators: tuple[tuple[str, int], ...] = ()
    cpus: Amount | None = None
    memory_gib: Amount | None = None
    instance_type: str | None = None
    use_spot: bool | None = None
    disk_size_gib: int | None = None
    # Recorded and shown; mapped to disk and network choices by the cloud providers.
    disk_tier: str | None = None
    network_tier: str | None = None
    ports: tuple[str, ...] = ()
    max_hourly_cost_micros: int | None = None
    countries: tuple[str, ...] = ()
    autostop: AutostopSpec | None = None
    image_id: str | Mapping[str, str] | None = None
    labels: Mapping[str, str] = Field(default_factory=dict)
    any_of: tuple[ResourcesSpec, ...] = ()
    ordered: tuple[ResourcesSpec, ...] = ()

    @property
    def docker_image(self) -> str | None:
        """The container image of `image_id: docker:IMAGE`, if that is what was asked for."""
        if isinstance(self.image_id, str) and self.image_id.startswith("docker:"):
            return self.image_id[len("docker:") :]
        return None

    @property
    def disk_size(self) -> int | None:
        """`disk_size_gib` under the task file's own name."""
        return self.disk_size_gib

    @property
    def alternatives(self) -> tuple[ResourcesSpec, ...]:
        """The resource sets a placement may use: the candidates, or this block itself."""
        return self.ordered or self.any_of or (self,)

    def offer_filter(self, normalize_accelerator: Callable[[str], str] = keep_name) -> OfferFilter:
        """This block as a catalog query (candidates are not looked at; see `alternatives`)."""
        return OfferFilter(
            accelerators=tuple(
                (normalize_accelerator(name), count) for name, count in self.accelerators
            ),
            cpus=self.cpus,
            memory_gib=self.memory_gib,
            cloud=self.cloud,
            region=self.region,
            zone=self.zone,
            instance_type=self.instance_type,
            countries=self.countries,
            spot=bool(self.use_spot),
            max_hourly_price_micros=self.max_hourly_cost_micros,
            blocked=HOST_PROCESS_CLOUDS if self.docker_image else frozenset(),
            faster_network=self.network_tier == "best",
        )
