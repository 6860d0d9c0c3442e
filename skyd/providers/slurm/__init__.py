"""The slurm provider: a lab's Slurm clusters as places to run jobs (sbatch / squeue / scancel)."""

from skyd.providers.slurm.config import SlurmCluster, SlurmLogin, SlurmProviderConfig
from skyd.providers.slurm.provider import SLURM_CLOUD, SlurmProvider
from skyd.providers.slurm.runner import SlurmRunner

__all__ = [
    "SLURM_CLOUD",
    "SlurmCluster",
    "SlurmLogin",
    "SlurmProvider",
    "SlurmProviderConfig",
    "SlurmRunner",
]
