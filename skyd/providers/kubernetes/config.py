"""Typed settings of the kubernetes provider, validated when built.

In the daemon's config file (parsed by KubernetesConfig.from_mapping):

    [kubernetes]
    contexts = ["lab-cluster"]     # kubeconfig contexts to use; [] = the current context
    kubeconfig = ""                # "" = the standard chain: $KUBECONFIG, ~/.kube/config,
                                   # then the pod's service account (in-cluster)
    namespace = "skyd"
    image = "python:3.12-slim"     # the container every task runs in (needs bash)
    hourly_price_micros = 0        # the lab's internal price per node-hour
    gpu_label = "nvidia.com/gpu.product"
    linger_s = 600                 # pods keep their node this long after the run
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skyd.providers.settings import reject_unknown

IN_CLUSTER = "in-cluster"
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    contexts: Sequence[str] = ()
    kubeconfig: Path | None = None
    namespace: str = "default"
    image: str = "python:3.12-slim"
    hourly_price_micros: int = 0
    gpu_label: str = "nvidia.com/gpu.product"
    linger_s: float = 600.0
    request_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for ctx in self.contexts:
            if not isinstance(ctx, str) or not ctx or "@" in ctx:
                raise ValueError(
                    f"kubernetes.contexts: {ctx!r} is not a context name (no '@'; see "
                    "`kubectl config get-contexts`)"
                )
        if len(self.namespace) > 63 or not _NAMESPACE.fullmatch(self.namespace):
            raise ValueError(
                f"kubernetes.namespace must be a DNS label (lowercase letters, digits, '-'), "
                f"got {self.namespace!r}"
            )
        if not self.image:
            raise ValueError("kubernetes.image is required: the container image tasks run in")
        if not isinstance(self.hourly_price_micros, int) or self.hourly_price_micros < 0:
            raise ValueError(
                "kubernetes.hourly_price_micros must be whole micro-dollars >= 0, "
                f"got {self.hourly_price_micros!r}"
            )
        if self.linger_s < 0 or self.request_timeout_s <= 0:
            raise ValueError("kubernetes.linger_s must be >= 0 and request_timeout_s > 0")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> KubernetesConfig:
        reject_unknown(raw, set(cls.__dataclass_fields__) | {"enabled"}, "kubernetes")
        values = {k: v for k, v in raw.items() if k != "enabled"}
        contexts = values.get("contexts", ())
        if isinstance(contexts, str) or not isinstance(contexts, Sequence):
            raise ValueError("kubernetes.contexts must be a list like ['lab-cluster']")
        values["contexts"] = tuple(contexts)
        kubeconfig = values.get("kubeconfig")
        values["kubeconfig"] = Path(str(kubeconfig)).expanduser() if kubeconfig else None
        for key in ("linger_s", "request_timeout_s"):
            if key in values:
                if not isinstance(values[key], int | float) or isinstance(values[key], bool):
                    raise ValueError(f"kubernetes.{key} must be a number of seconds")
                values[key] = float(values[key])
        return cls(**values)
