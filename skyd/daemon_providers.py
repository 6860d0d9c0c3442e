"""The providers a daemon's settings enable, each built from its config table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skyd.catalog import Catalog, default_catalog_dir
from skyd.clock import Clock
from skyd.config import ConfigError, Settings
from skyd.market.replay import TraceReplay, lasting_anchor
from skyd.market.traces import load_trace_set
from skyd.providers.base import Provider
from skyd.providers.local import LocalProvider
from skyd.providers.sim import SimProvider
from skyd.providers.sim.provider import sim_cpu_offers


def cloud_public_key(settings: Settings) -> str | None:
    """The public half of [cloud_ssh] key_path (its .pub file, else derived from the key)."""
    key_path = settings.cloud_ssh.key_path
    if key_path is None:
        return None
    public = Path(f"{key_path}.pub")
    try:
        if public.exists():
            return public.read_text().strip()
        import asyncssh

        key = asyncssh.read_private_key(str(key_path))
        return bytes(key.export_public_key("openssh")).decode().strip()
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"[cloud_ssh] key_path {key_path}: cannot read the key ({exc}); point it at an "
            "OpenSSH private key (ssh-keygen -t ed25519 -f KEY)"
        ) from exc


def build_cloud_providers(
    settings: Settings, clock: Clock, catalog: Catalog
) -> dict[str, Provider]:
    """The cloud adapters enabled in the config ([aws] / [gcp] / [azure], enabled = true)."""
    providers: dict[str, Provider] = {}
    for cloud in ("aws", "gcp", "azure"):
        raw = dict(getattr(settings, cloud))
        if not raw.pop("enabled", False):
            continue
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        if "ssh_public_key" not in fields and (public := cloud_public_key(settings)):
            fields["ssh_public_key"] = public  # the key skyd logs in with, delivered at launch
        offers = [o for o in catalog.offers if o.cloud == cloud]
        try:
            # Launches deliver the daemon's own login key unless the table names another.
            if "ssh_public_key" not in fields and settings.cloud_ssh.key_path is not None:
                from skyd.providers.ssh_key import public_key_of

                fields["ssh_public_key"] = public_key_of(settings.cloud_ssh.key_path)
            if cloud == "aws":
                from skyd.providers.aws import AwsConfig, AwsProvider

                providers[cloud] = AwsProvider(AwsConfig(**fields), clock, offers)
            elif cloud == "gcp":
                from skyd.providers.gcp import GcpConfig, GcpProvider

                providers[cloud] = GcpProvider(GcpConfig(**fields), clock, offers)
            else:
                from skyd.providers.azure import AzureConfig, AzureProvider

                providers[cloud] = AzureProvider(AzureConfig(**fields), clock=clock, offers=offers)
        except TypeError as exc:
            raise ConfigError(f"[{cloud}]: {exc}") from exc
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    return providers


def build_providers(
    settings: Settings, clock: Clock, catalog: Catalog | None = None
) -> dict[str, Provider]:
    providers: dict[str, Provider] = {}
    if settings.local.enabled:
        providers["local"] = LocalProvider(
            settings.state_dir / "local-slots",
            clock,
            slots=settings.local.slots,
            gpus=settings.local.gpus,
        )
    if settings.ssh.get("hosts"):
        from skyd.providers.ssh import SshConnections, SshProvider, SshProviderConfig

        try:
            config = SshProviderConfig.from_mapping(settings.ssh, settings.state_dir / "ssh")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        providers["ssh"] = SshProvider(config, clock, SshConnections())
    if settings.slurm.get("clusters"):
        from skyd.providers.slurm import SlurmProvider, SlurmProviderConfig

        try:
            slurm_config = SlurmProviderConfig.from_mapping(settings.slurm)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        ssh = providers.get("ssh")
        providers["slurm"] = SlurmProvider(slurm_config, clock, getattr(ssh, "connections", None))
    if settings.kubernetes.get("enabled"):
        from skyd.providers.kubernetes import KubernetesConfig, KubernetesProvider

        try:
            kube_config = KubernetesConfig.from_mapping(settings.kubernetes)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        providers["kubernetes"] = KubernetesProvider(kube_config, clock)
    if settings.sim.enabled:
        traces = settings.sim.traces or default_catalog_dir() / "traces" / "aws-v100-3zone"
        setup = {
            "traces": str(Path(traces).resolve()),
            "start_offset": settings.sim.start_offset_seconds,
            "speedup": settings.sim.speedup,
        }
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        replay = TraceReplay(
            load_trace_set(traces),
            clock,
            start_offset=settings.sim.start_offset_seconds,
            speedup=settings.sim.speedup,
            anchor=lasting_anchor(settings.state_dir / "sim-replay.json", clock, setup),
        )
        providers["sim"] = SimProvider(
            replay,
            clock,
            settings.state_dir / "sim-instances",
            provisioning_delay_seconds=settings.sim.provisioning_delay_seconds,
            cpu_offers=sim_cpu_offers(catalog.offers if catalog else (), replay),
        )
    return providers
