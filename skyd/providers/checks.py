"""`skyctl check`: one cheap authenticated call per configured cloud, and what to fix."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from skyd.errors import AuthError, ProviderError, TransientError

CLOUDS = ("aws", "gcp", "azure")
# The lab's own clusters: listed only when configured (a lab without them has nothing to fix).
LAB_CLUSTERS = ("slurm", "kubernetes")
CHECK_TIMEOUT_S = 60.0

_CREDENTIALS_FIX = {
    "aws": "give botocore credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
    "~/.aws/credentials or aws.profile) allowed ec2:Describe*, ec2:RunInstances and "
    "ec2:TerminateInstances",
    "gcp": "set gcp.credentials_file to a service-account key (or run `gcloud auth "
    "application-default login`) with Compute Admin on gcp.project, and enable the Compute "
    "Engine API there",
    "azure": "sign in for DefaultAzureCredential (`az login`, or AZURE_CLIENT_ID, "
    "AZURE_TENANT_ID and AZURE_CLIENT_SECRET) with Contributor on azure.resource_group, and "
    "check azure.subscription_id and azure.resource_group",
}
_CREDENTIALS_FIX.update(
    {
        "slurm": "check [[slurm.clusters]] (login host, user and key; partitions) and that "
        "sinfo/sbatch work for that account on the login node",
        "kubernetes": "check the kubeconfig (kubernetes.kubeconfig, $KUBECONFIG or "
        "~/.kube/config) and kubernetes.contexts: `kubectl --context C get nodes` must work",
    }
)
_ENDPOINT_SETTING = {
    "aws": "aws.endpoint_url",
    "gcp": "gcp.endpoint",
    "azure": "azure.base_url",
    "slurm": "the login node in [[slurm.clusters]]",
    "kubernetes": "the API server in the kubeconfig",
}


@runtime_checkable
class Checkable(Protocol):
    """Providers that can prove their credentials work with one cheap read-only call."""

    async def check(self) -> str:
        """What answered (e.g. 'DescribeAvailabilityZones in us-east-1: 6 zones');
        raises ProviderError when the cloud refuses or cannot be reached."""
        ...


@dataclass(frozen=True, slots=True)
class CloudCheck:
    cloud: str
    configured: bool
    enabled: bool
    reason: str
    fix: str = ""


async def check_clouds(providers: Mapping[str, object]) -> list[CloudCheck]:
    """Every cloud skyd knows, configured or not, then the lab's configured Slurm clusters and
    Kubernetes contexts, checked concurrently."""

    async def one(cloud: str) -> CloudCheck:
        provider = providers.get(cloud)
        if provider is None:
            return CloudCheck(
                cloud,
                False,
                False,
                "not enabled in the daemon's config",
                f"add [{cloud}] with enabled = true to the config file and restart skyd",
            )
        if not isinstance(provider, Checkable):
            return CloudCheck(cloud, True, True, "enabled (this adapter has no check call)")
        try:
            answered = await asyncio.wait_for(provider.check(), CHECK_TIMEOUT_S)
        except TimeoutError:
            return CloudCheck(
                cloud,
                True,
                False,
                f"no answer within {CHECK_TIMEOUT_S:.0f}s",
                f"check network access to the cloud (or {_ENDPOINT_SETTING[cloud]})",
            )
        except ProviderError as exc:
            return CloudCheck(cloud, True, False, exc.message, _fix_for(cloud, exc))
        return CloudCheck(cloud, True, True, answered)

    names = [*CLOUDS, *(c for c in LAB_CLUSTERS if c in providers)]
    return list(await asyncio.gather(*(one(c) for c in names)))


def _fix_for(cloud: str, error: ProviderError) -> str:
    if isinstance(error, AuthError):
        return _CREDENTIALS_FIX[cloud]
    if isinstance(error, TransientError):
        return (
            f"the cloud did not answer: check network access (or {_ENDPOINT_SETTING[cloud]}) "
            "and run `skyctl check` again"
        )
    return f"check the [{cloud}] settings; the cloud's message says what it refused"
