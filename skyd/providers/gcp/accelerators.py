"""GCE accelerator type names of the catalog's GPU names, for N1 VMs with attached GPUs."""

from __future__ import annotations

# cloud.google.com/compute/docs/gpus: the acceleratorType resource names.
GCE_ACCELERATORS = {
    "T4": "nvidia-tesla-t4",
    "P4": "nvidia-tesla-p4",
    "V100": "nvidia-tesla-v100",
    "P100": "nvidia-tesla-p100",
    "K80": "nvidia-tesla-k80",
    "L4": "nvidia-l4",
    "A100": "nvidia-tesla-a100",
    "A100-80GB": "nvidia-a100-80gb",
    "H100": "nvidia-h100-80gb",
    "H100-MEGA": "nvidia-h100-mega-80gb",
}


def accelerator_type(name: str) -> str:
    """'T4' → 'nvidia-tesla-t4'; a name GCE spells already passes through."""
    return GCE_ACCELERATORS.get(name, name.lower())
