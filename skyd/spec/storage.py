"""Bucket file mounts: `DEST: s3://bucket/path` and SkyPilot's storage objects
(`name`/`source`/`store`/`mode`/`persistent`) → StorageMount records."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from skyd.spec.fields import FieldReader, Problems
from skyd.spec.resources import STORED_MODEL
from skyd.spec.values import describe


class StorageMode(enum.StrEnum):
    MOUNT = "MOUNT"  # a live view of the bucket (FUSE); a COPY-style sync where none exists
    COPY = "COPY"  # downloaded before setup
    MOUNT_CACHED = "MOUNT_CACHED"  # mounted with a local cache, uploaded asynchronously


# URL scheme → SkyPilot's store name
SCHEMES = {"s3": "s3", "gs": "gcs", "r2": "r2", "az": "azure"}
STORES = ("s3", "gcs", "azure", "r2")
STORAGE_FIELDS = ("name", "source", "store", "mode", "persistent")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,61}[a-z0-9]$")
_AZURE_HOST = re.compile(r"^([a-z0-9]{3,24})\.blob\.core\.windows\.net$")


class StorageMount(BaseModel):
    """One bucket mount. `bucket` and `prefix` say where the data lives; `store` which cloud's
    object storage; `source_local` a local directory a skyd-created bucket is filled from."""

    model_config = STORED_MODEL

    store: str
    bucket: str
    prefix: str = ""
    account: str | None = None  # Azure storage account
    mode: StorageMode = StorageMode.MOUNT
    persistent: bool = True
    source_local: str | None = None
    # named by `name:` rather than a URL: created if missing, and filled from source_local
    owned: bool = False

    @property
    def url(self) -> str:
        scheme = {"gcs": "gs", "azure": "az"}.get(self.store, self.store)
        host = f"{self.account}/{self.bucket}" if self.account else self.bucket
        return f"{scheme}://{host}" + (f"/{self.prefix}" if self.prefix else "")


def is_bucket_url(text: str) -> bool:
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    return scheme in SCHEMES or (scheme == "https" and ".blob.core.windows.net" in text)


def parse_bucket_url(text: str) -> tuple[str, str, str, str | None]:
    """`s3://b/p`, `gs://b/p`, `r2://b/p`, `az://account/container/p` or
    `https://account.blob.core.windows.net/container/p` → (store, bucket, prefix, account)."""
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    path = parts.path.strip("/")
    if scheme == "https":
        host = _AZURE_HOST.match(parts.netloc.lower())
        container, _, prefix = path.partition("/")
        if host is None or not container:
            raise ValueError(
                f"{text!r} is not an Azure Blob URL; write "
                "https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH]"
            )
        return "azure", container, prefix, host.group(1)
    if scheme == "az":
        container, _, prefix = path.partition("/")
        if not parts.netloc or not container:
            raise ValueError(f"{text!r}: write az://ACCOUNT/CONTAINER[/PATH]")
        return "azure", container, prefix, parts.netloc
    if scheme not in SCHEMES or not parts.netloc:
        raise ValueError(
            f"{text!r} is not a bucket URL skyd reads; use s3://, gs://, r2://, az:// "
            "or https://ACCOUNT.blob.core.windows.net/"
        )
    return SCHEMES[scheme], parts.netloc, path, None


def bucket_mount(problems: Problems, path: str, url: str) -> StorageMount:
    """`DEST: s3://bucket/path`: the objects are copied there before setup (SkyPilot's COPY)."""
    try:
        store, bucket, prefix, account = parse_bucket_url(url)
    except ValueError as exc:
        raise problems.at(path, str(exc)) from None
    return StorageMount(
        store=store,
        bucket=bucket,
        prefix=prefix,
        account=account,
        mode=StorageMode.COPY,
        persistent=True,
    )


def storage_object(
    problems: Problems,
    path: str,
    value: Mapping[object, object],
    resolve_local: Callable[[str, str], str],
) -> StorageMount:
    """SkyPilot's storage object. `resolve_local` turns a local `source` into an absolute
    path (the task parser's own path rules)."""
    reader = FieldReader(problems, path, value, STORAGE_FIELDS)
    name, source = reader.take("name"), reader.take("source")
    store, mode, persistent = reader.take("store"), reader.take("mode"), reader.take("persistent")
    reader.finish()
    fields: dict[str, Any] = {}
    if mode is not None:
        text = str(mode).strip().upper() if isinstance(mode, str) else ""
        if text not in StorageMode.__members__:
            raise problems.at(
                f"{path}.mode",
                f"{describe(mode)} is not a mode; use one of: MOUNT, COPY, MOUNT_CACHED",
            )
        fields["mode"] = StorageMode(text)
    if persistent is not None:
        if not isinstance(persistent, bool):
            raise problems.at(f"{path}.persistent", f"{describe(persistent)} is not true or false")
        fields["persistent"] = persistent
    chosen_store: str | None = None
    if store is not None:
        text = str(store).strip().lower() if isinstance(store, str) else ""
        if text not in STORES:
            raise problems.at(
                f"{path}.store",
                f"{describe(store)} is not a store skyd supports; use one of: {', '.join(STORES)}",
            )
        chosen_store = text
    if isinstance(source, list):
        raise problems.at(
            f"{path}.source", "a list of sources is not supported yet; give one directory or URL"
        )
    if isinstance(source, str) and is_bucket_url(source):
        try:
            url_store, bucket, prefix, account = parse_bucket_url(source)
        except ValueError as exc:
            raise problems.at(f"{path}.source", str(exc)) from None
        if chosen_store is not None and chosen_store != url_store:
            raise problems.at(
                f"{path}.store",
                f"store {chosen_store} does not match the source {source!r} ({url_store})",
            )
        return StorageMount(
            store=url_store, bucket=bucket, prefix=prefix, account=account, **fields
        )
    if not isinstance(name, str) or not name.strip():
        raise problems.at(
            f"{path}.name" if name is not None or reader.has("name") else path,
            "a bucket needs a name when its source is not a bucket URL; give a unique one "
            "(e.g. name: my-lab-outputs-alice)",
        )
    bucket = name.strip()
    if not _BUCKET.match(bucket):
        raise problems.at(
            f"{path}.name",
            f"{bucket!r} is not a valid bucket name; use 3-63 lowercase letters, digits, "
            "dots and hyphens, starting and ending with a letter or digit",
        )
    local = None
    if source is not None:
        if not isinstance(source, str):
            raise problems.at(f"{path}.source", f"{describe(source)} is not a path or URL")
        local = resolve_local(f"{path}.source", source)
    return StorageMount(
        store=chosen_store or "s3", bucket=bucket, source_local=local, owned=True, **fields
    )
