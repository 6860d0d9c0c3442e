"""Bucket mounts on a host that runs the job as plain processes (no FUSE): the objects are
downloaded before setup (COPY), and for MOUNT / MOUNT_CACHED what the job wrote there is
uploaded back when it ends, so a MOUNT bucket still receives the job's outputs.

Runs inside the shim as the job's owner, with the job's own credentials (its envs and
secrets: AWS_ACCESS_KEY_ID, …); without any, public buckets are read unsigned. The S3
endpoint is the mount's `endpoint_url` (skyd's [aws] endpoint_url), else AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MANIFEST = "buckets.json"
WRITES_BACK = ("MOUNT", "MOUNT_CACHED")


def _client(mount: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    import boto3  # only paid for by jobs with bucket mounts
    from botocore import UNSIGNED
    from botocore.config import Config

    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    session = boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
    )
    config = Config(signature_version=UNSIGNED) if not (key and secret) else None
    endpoint = mount.get("endpoint_url") or env.get("AWS_ENDPOINT_URL") or None
    return session.client("s3", endpoint_url=endpoint, config=config)


def _keys(client: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """(key, path relative to the mount) of every object the mount covers."""
    if prefix:
        try:
            client.head_object(Bucket=bucket, Key=prefix)
        except client.exceptions.ClientError:
            pass
        else:
            return [(prefix, "")]  # the mount is one object
    folder = prefix.rstrip("/") + "/" if prefix else ""
    found: list[tuple[str, str]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
        for item in page.get("Contents", []):
            key = item["Key"]
            if not key.endswith("/"):
                found.append((key, key[len(folder) :]))
    return found


def _ensure(client: Any, mount: Mapping[str, Any]) -> str:
    """A bucket the task names (SkyPilot's `name:`): create it if missing, and upload its
    local `source` (once: objects already there are kept)."""
    bucket = mount["bucket"]
    note = ""
    try:
        client.head_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        client.create_bucket(Bucket=bucket)
        note = f"--- skyd: created bucket {mount['url']} ---\n"
    source = mount.get("source_local")
    if source:
        root = Path(source)
        have = {key for key, _ in _keys(client, bucket, "")}
        files = [path for path in root.rglob("*") if path.is_file()] if root.is_dir() else []
        for path in files:
            key = str(path.relative_to(root))
            if key not in have:
                client.upload_file(str(path), bucket, key)
        note += f"--- skyd: {source} uploaded to {mount['url']} ---\n"
    return note


def _snapshot(root: Path) -> dict[str, list[float]]:
    if root.is_file():
        stat = root.stat()
        return {"": [stat.st_size, stat.st_mtime]}
    files: dict[str, list[float]] = {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            stat = path.stat()
            files[str(path.relative_to(root))] = [stat.st_size, stat.st_mtime]
    return files


def fetch(mounts: Sequence[Mapping[str, Any]], env: Mapping[str, str], attempt_dir: Path) -> str:
    """Download every mount before setup; remember what was there for `push_back`."""
    manifest: dict[str, dict[str, list[float]]] = {}
    lines = []
    for mount in mounts:
        target = Path(mount["target"])
        client = _client(mount, env)
        if mount.get("owned"):
            lines.append(_ensure(client, mount))
        keys = _keys(client, mount["bucket"], mount.get("prefix", ""))
        for key, relative in keys:
            path = target / relative if relative else target
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(mount["bucket"], key, str(path))
        if not keys:
            target.mkdir(parents=True, exist_ok=True)
        manifest[mount["target"]] = _snapshot(target)
        how = "copied" if mount["mode"] == "COPY" else "copied (no FUSE here; written back at end)"
        lines.append(f"--- skyd: {mount['url']} → {target}: {len(keys)} objects {how} ---\n")
    (attempt_dir / MANIFEST).write_text(json.dumps(manifest))
    return "".join(lines)


def push_back(
    mounts: Sequence[Mapping[str, Any]], env: Mapping[str, str], attempt_dir: Path
) -> str:
    """Upload what the job added or changed under its MOUNT / MOUNT_CACHED buckets."""
    try:
        before = json.loads((attempt_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        before = {}
    lines = []
    for mount in mounts:
        if mount["mode"] not in WRITES_BACK:
            continue
        target = Path(mount["target"])
        if not target.exists():
            continue
        client = _client(mount, env)
        known = before.get(mount["target"], {})
        prefix = mount.get("prefix", "")
        changed = [rel for rel, meta in _snapshot(target).items() if known.get(rel) != meta]
        for relative in changed:
            key = "/".join(part for part in (prefix.rstrip("/"), relative) if part)
            client.upload_file(str(target / relative if relative else target), mount["bucket"], key)
        lines.append(f"--- skyd: {len(changed)} files written back to {mount['url']} ---\n")
    return "".join(lines)
