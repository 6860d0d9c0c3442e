"""The kubernetes provider: a lab's Kubernetes contexts as places to run jobs (Indexed Jobs)."""

from skyd.providers.kubernetes.config import KubernetesConfig
from skyd.providers.kubernetes.errors import K8S_CLOUD
from skyd.providers.kubernetes.provider import KubernetesProvider
from skyd.providers.kubernetes.runner import KubernetesRunner

__all__ = ["K8S_CLOUD", "KubernetesConfig", "KubernetesProvider", "KubernetesRunner"]
