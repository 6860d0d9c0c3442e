"""How the shipped catalogs spell offerings that are not a plain cloud machine type."""

from __future__ import annotations

# GCP N1 hosts with attached GPUs are listed as '<machine type>+<GPU>x<count>'
# (e.g. 'n1-standard-8+T4x2') so that every offering keeps a unique Offer.key.
GCE_ATTACHED_GPU_SEPARATOR = "+"


def gce_machine_type(instance_type: str) -> str:
    """The GCE machine type to launch for a catalog instance type ('n1-standard-8+T4x2' →
    'n1-standard-8'); the GPUs to attach are the offer's accelerator name and count."""
    return instance_type.split(GCE_ATTACHED_GPU_SEPARATOR, 1)[0]
