"""Bucket mounts on a host that runs the job as plain processes (no FUSE): the objects are
downloaded before setup (COPY), and for MOUNT / MOUNT_CACHED what the job wrote there is
uploaded back when it ends, so a MOUNT bucket still receives the job's outputs.

Runs inside the shim as the job's owner, with the job's own credentials (its envs and
secrets; see skyd.runner.stores for each store's). A bucket the task names with `name:` is
created (tagged as skyd's) if missing; one skyd created with `persistent: false` is deleted
when the job that uses it ends (SkyPilot's ephemeral storage).

The bytes downloaded from and uploaded back to each bucket (the objects' sizes) go into the
attempt's bucket-transfers.json (skyd.runner.bucket_traffic), which the daemon charges.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from skyd.providers.base import MANAGED, TAG_MANAGED
from skyd.runner import bucket_traffic
from skyd.runner.azure_rclone import SAS_LIFETIME, rclone_sas_url
from skyd.runner.stores import TAG_PERSISTENT, Bucket, bucket_labels, open_bucket

MANIFEST = "buckets.json"
REPORT = "mounts.json"  # destination → how the bucket got there (read by `skyctl show`)
WRITES_BACK = ("MOUNT", "MOUNT_CACHED")


def _keys(bucket: Bucket, prefix: str) -> list[tuple[str, str, int]]:
    """(key, path relative to the mount, size) of every object the mount covers: the object
    `prefix` itself, or everything under the folder `prefix/` (not `prefix-other/`)."""
    folder = prefix.rstrip("/") + "/" if prefix else ""
    found: list[tuple[str, str, int]] = []
    for key, size in bucket.objects(prefix):
        if prefix and key == prefix:
            return [(key, "", size)]  # the mount is one object
        if key.startswith(folder) and not key.endswith("/"):
            found.append((key, key[len(folder) :], size))
    return found


def _record(attempt_dir: Path, mount: Mapping[str, Any], direction: str, nbytes: int) -> None:
    """Add one bucket's traffic to the attempt's report, for the daemon to charge."""
    path = attempt_dir / bucket_traffic.REPORT
    try:
        entries = list(json.loads(path.read_text()))
    except (OSError, ValueError):
        entries = []
    dest = mount.get("dest") or mount["target"]
    entries.append(
        {"dest": dest, "url": mount["url"], "store": mount.get("store", "s3")}
        | {"direction": direction, "bytes": nbytes}
    )
    path.with_suffix(".tmp").write_text(json.dumps(entries))
    path.with_suffix(".tmp").replace(path)


def _ensure(bucket: Bucket, mount: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """A bucket the task names (SkyPilot's `name:`): create it if missing, tagged as skyd's,
    and upload its local `source` (once: objects already there are kept)."""
    note = ""
    if not bucket.exists():
        owner = env.get("USER", "")
        labels = bucket_labels(owner, env.get("SKYD_JOB_ID", ""), bool(mount.get("persistent")))
        bucket.create(labels)
        note = f"--- skyd: created bucket {mount['url']} ---\n"
    source = mount.get("source_local")
    if source:
        root = Path(source)
        have = {key for key, _ in bucket.objects("")}
        files = [path for path in root.rglob("*") if path.is_file()] if root.is_dir() else []
        for path in files:
            key = str(path.relative_to(root))
            if key not in have:
                bucket.upload(path, key)
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
    report: dict[str, str] = {}
    lines = []
    for mount in mounts:
        target = Path(mount["target"])
        bucket = open_bucket(mount, env)
        if mount.get("owned"):
            lines.append(_ensure(bucket, mount, env))
        keys = _keys(bucket, mount.get("prefix", ""))
        for key, relative, _ in keys:
            path = target / relative if relative else target
            path.parent.mkdir(parents=True, exist_ok=True)
            bucket.download(key, path)
        _record(attempt_dir, mount, "in", sum(size for _, _, size in keys))
        if not keys:
            target.mkdir(parents=True, exist_ok=True)
        manifest[mount["target"]] = _snapshot(target)
        how = "copied" if mount["mode"] == "COPY" else "copied (no FUSE here; written back at end)"
        lines.append(f"--- skyd: {mount['url']} → {target}: {len(keys)} objects {how} ---\n")
        report[mount.get("dest") or mount["target"]] = (
            "copied before setup"
            if mount["mode"] == "COPY"
            else "copied before setup (no FUSE mount for jobs on this host); "
            "written back when the job ends"
        )
    (attempt_dir / MANIFEST).write_text(json.dumps(manifest))
    (attempt_dir / REPORT).write_text(json.dumps(report))
    return "".join(lines)


def push_back(
    mounts: Sequence[Mapping[str, Any]],
    env: Mapping[str, str],
    attempt_dir: Path,
    *,
    purge: bool = True,
) -> str:
    """Upload what the job added or changed under its MOUNT / MOUNT_CACHED buckets, then
    (with `purge`: the job is over, not killed to go on elsewhere) delete the
    non-persistent buckets skyd created for it."""
    try:
        before = json.loads((attempt_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        before = {}
    lines = []
    for mount in mounts:
        target = Path(mount["target"])
        if mount["mode"] not in WRITES_BACK or not target.exists():
            continue
        bucket = open_bucket(mount, env)
        known = before.get(mount["target"], {})
        prefix = mount.get("prefix", "")
        changed = [rel for rel, meta in _snapshot(target).items() if known.get(rel) != meta]
        sent = 0
        for relative in changed:
            key = "/".join(part for part in (prefix.rstrip("/"), relative) if part)
            path = target / relative if relative else target
            bucket.upload(path, key)
            sent += path.stat().st_size
        _record(attempt_dir, mount, "out", sent)
        lines.append(f"--- skyd: {len(changed)} files written back to {mount['url']} ---\n")
    if not purge or env.get("SKYD_NODE_RANK", "0") != "0":
        return "".join(lines)  # a gang's bucket is deleted once, by rank 0
    for mount in mounts:
        if mount.get("owned") and mount.get("persistent") is False:
            lines.append(_drop(open_bucket(mount, env), mount["url"]))
    return "".join(lines)


def _drop(bucket: Bucket, url: str) -> str:
    """Delete an ephemeral bucket, only if skyd's labels say skyd made it non-persistent: a
    bucket someone else made under that name is never touched."""
    labels = bucket.labels() if bucket.exists() else {}
    if labels.get(TAG_MANAGED) != MANAGED or labels.get(TAG_PERSISTENT) != "false":
        return f"--- skyd: {url} kept (not created by skyd as non-persistent) ---\n"
    bucket.delete()
    return f"--- skyd: deleted non-persistent bucket {url} ---\n"


def prepare_for_nodes(
    mounts: Sequence[Mapping[str, Any]], env: Mapping[str, str]
) -> tuple[list[dict[str, Any]], str]:
    """For a job on other machines (skyd.runner.remote_buckets mounts there): create the
    buckets the task names and upload their local sources from this host, where the sources
    are. The nodes then only mount or copy; a non-persistent bucket skyd created is marked
    to be purged by the node when the job ends."""
    prepared = []
    notes = ""
    for mount in mounts:
        ready = {k: v for k, v in mount.items() if k != "source_local"}
        if mount.get("owned"):
            # in the daemon: only the job's own credentials, never the daemon's
            bucket = open_bucket(mount, env, ambient=False)
            notes += _ensure(bucket, mount, env)
            if mount.get("persistent") is False:
                labels = bucket.labels()
                ours = labels.get(TAG_MANAGED) == MANAGED
                ready["purge_at_end"] = ours and labels.get(TAG_PERSISTENT) == "false"
            ready["owned"] = False
        if mount.get("store") == "azure":
            sas = rclone_sas_url(env)
            if sas is not None:
                ready["sas_url"] = sas
                endpoint = sas.split("?", 1)[0]
                notes += (
                    f"--- skyd: {mount.get('url')}: the nodes' rclone reaches {endpoint} "
                    f"through an account SAS valid {SAS_LIFETIME.days} days (rclone cannot "
                    "use a key with a path-style endpoint) ---\n"
                )
        prepared.append(ready)
    return prepared, notes
