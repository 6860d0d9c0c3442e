"""Interactive clusters and autostop: the public surface of the package."""

from skyd.clusters.activity import (
    SESSION_ENV,
    ActivityProbe,
    GpuProbe,
    LocalSessionProbe,
    NoGpuReading,
    NoSessions,
    NvidiaSmiProbe,
)
from skyd.clusters.names import check_cluster_name
from skyd.clusters.service import ClusterService, ClusterTarget, JobCanceller
from skyd.clusters.settings import ClusterSettings

__all__ = [
    "SESSION_ENV",
    "ActivityProbe",
    "ClusterService",
    "ClusterSettings",
    "ClusterTarget",
    "GpuProbe",
    "JobCanceller",
    "LocalSessionProbe",
    "NoGpuReading",
    "NoSessions",
    "NvidiaSmiProbe",
    "check_cluster_name",
]
