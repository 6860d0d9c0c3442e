"""The public half of the daemon's `[cloud_ssh] key_path`, which every cloud launch delivers
(EC2 key pair, GCE ssh-keys metadata, Azure osProfile) so skyd can log in to its VMs."""

from __future__ import annotations

from pathlib import Path


def public_key_of(private_key: Path) -> str:
    """`KEY.pub` when it exists, else derived from the private key (OpenSSH or PEM)."""
    public = Path(f"{private_key}.pub")
    if public.is_file():
        line = public.read_text().strip()
        if line:
            return line
    from cryptography.hazmat.primitives import serialization

    try:
        data = private_key.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"[cloud_ssh] key_path: cannot read {private_key}: {exc.strerror}; point it at the "
            "private key skyd logs in to cloud VMs with"
        ) from exc
    try:
        key = serialization.load_ssh_private_key(data, password=None)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None)  # type: ignore[assignment]
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"[cloud_ssh] key_path: {private_key} is not an unencrypted OpenSSH or PEM "
                "private key; create one with `ssh-keygen -t ed25519 -N ''`"
            ) from exc
    blob = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return f"{blob.decode()} skyd"
