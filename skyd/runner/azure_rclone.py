"""An account SAS URL for rclone where the job's Blob endpoint is one rclone cannot reach with
its key: rclone (Debian's 1.60, the one VMs install) builds `https://ACCOUNT.ENDPOINT` from an
account and key, so a path-style endpoint (Azurite's `http://HOST:PORT/ACCOUNT`, Azure Stack)
is out of its reach that way; a SAS URL is used exactly as given. Made on the daemon's host,
where azure-storage-blob is, from the job's own connection string."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from skyd.runner.remote_buckets import connection_parts

# long enough for a job's MOUNT to be written back at its end; the job holds the key anyway
SAS_LIFETIME = timedelta(days=7)


def needs_sas(parts: Mapping[str, str]) -> bool:
    """Whether the connection string's BlobEndpoint is not `https://ACCOUNT.SUFFIX/`."""
    endpoint = parts.get("BlobEndpoint")
    account = parts.get("AccountName", "")
    if not endpoint or not account or not parts.get("AccountKey"):
        return False
    url = urlsplit(endpoint)
    host_style = url.scheme == "https" and (url.hostname or "").startswith(f"{account}.")
    return not (host_style and url.path.strip("/") == "")


def rclone_sas_url(env: Mapping[str, str], now: datetime | None = None) -> str | None:
    """`BlobEndpoint?<account SAS>` (containers and objects: read, write, delete, list,
    add, create) when rclone needs one for this job's connection string, else None."""
    parts = connection_parts(env.get("AZURE_STORAGE_CONNECTION_STRING", ""))
    if not needs_sas(parts):
        return None
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    token = generate_account_sas(
        parts["AccountName"],
        parts["AccountKey"],
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
        expiry=(now or datetime.now(UTC)) + SAS_LIFETIME,
    )
    return f"{parts['BlobEndpoint'].rstrip('/')}?{token}"
