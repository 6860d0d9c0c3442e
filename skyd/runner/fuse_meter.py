"""What a FUSE `rclone mount` moved, read and written apart, asked of its remote-control server.

Shipped beside remote_buckets.py (stdlib only, python3 >= 3.6). rclone 1.60 prints no totals
when a mount exits, so each mount runs its remote-control server on loopback (a free port,
a random login in its environment) and `finish` asks it before unmounting: first `vfs/stats`
until no upload is queued or in flight (write-back is flushed), then `core/stats` and
`core/transferred`.

1.60's stats do not say which way a transfer went: `core/stats` "bytes" is reads through the
mount (downloads) and uploads together, and `core/transferred` lists each transfer by file
name and bytes only, and only the latest ~100 (104 of 110 in a trial). The mount's own log
(`-v --use-json-log`) names each upload ("Copied …" from a *local.Object, the VFS cache).
So: with no upload, everything was read; otherwise each transfer of a file is an upload or
a read by those names, which is exact when the list holds every byte counted and a file
read and written again moved the same bytes each time. Anything else is not told apart and
not metered (None).
"""

from __future__ import annotations

import base64
import collections
import json
import os
import socket
import time
import urllib.request
from typing import Any, TextIO

RC_POLL_S = 0.2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rc_flags(port: int) -> list[str]:
    """The server on loopback; the login comes from RCLONE_RC_USER / RCLONE_RC_PASS. -v and
    a JSON log: the log's upload lines tell writes from reads."""
    return ["--rc", "--rc-addr", f"127.0.0.1:{port}", "-v", "--use-json-log"]


def log_path(attempt_dir: str, index: int) -> str:
    return os.path.join(attempt_dir, f"rclone-mount-{index}.log")


def call(login: dict[str, Any], command: str, timeout: float = 30.0) -> dict[str, Any]:
    """One remote-control command (a POST with no parameters)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{login['port']}/{command}", data=b"{}", method="POST"
    )
    token = base64.b64encode(f"{login['user']}:{login['pass']}".encode()).decode()
    request.add_header("Authorization", "Basic " + token)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        result = json.loads(answer.read().decode())
    return result if isinstance(result, dict) else {}


def final_stats(login: dict[str, Any], wait_s: float) -> dict[str, Any] | None:
    """core/stats with core/transferred's list, once the VFS cache has no upload queued or
    in flight and no transfer is under way (or after wait_s); None if the server did not
    answer. (The cache's counters drop to 0 as an upload starts, before it is done.)"""
    try:
        deadline = time.monotonic() + wait_s
        while True:
            cache = call(login, "vfs/stats").get("diskCache") or {}
            stats = call(login, "core/stats")
            busy = cache.get("uploadsInProgress") or cache.get("uploadsQueued")
            if not (busy or stats.get("transferring")) or time.monotonic() >= deadline:
                break
            time.sleep(RC_POLL_S)  # rclone uploads in the background
        stats["transferred"] = call(login, "core/transferred").get("transferred") or []
        return stats
    except (OSError, ValueError):
        return None


def json_entry(line: str) -> dict[str, Any] | None:
    """A line of rclone's JSON log (`--use-json-log`); None for one that is not JSON."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def relay_log(path: str, log: TextIO) -> collections.Counter[str]:
    """Copy the mount's log to the job's log as text (its info lines left out, as rclone
    leaves them out by default); returns how many times each file was uploaded."""
    uploads: collections.Counter[str] = collections.Counter()
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return uploads
    for line in lines:
        entry = json_entry(line)
        if entry is None:
            log.write(line)  # printed before rclone's logging was set up
            continue
        level, text = str(entry.get("level", "info")), str(entry.get("msg", "")).strip()
        if text.startswith("Copied") and entry.get("objectType") == "*local.Object":
            uploads[str(entry.get("object", ""))] += 1  # from the VFS cache to the bucket
        if level not in ("info", "debug"):
            log.write(f"rclone {level}: {text}\n")
    return uploads


def split(
    stats: dict[str, Any] | None, uploads: collections.Counter[str]
) -> tuple[int, int] | None:
    """(bytes read from the bucket, bytes written to it), or None when 1.60's stats cannot
    tell them apart (see the module's docstring)."""
    if stats is None or not isinstance(stats.get("bytes"), int):
        return None
    total = int(stats["bytes"])
    if not uploads:
        return total, 0
    if stats.get("transferring"):
        return None  # still under way when the wait ran out
    done = [t for t in stats.get("transferred") or [] if isinstance(t, dict)]
    if sum(int(t.get("bytes") or 0) for t in done) != total:
        return None  # the list does not hold every transfer counted
    by_name: dict[str, list[int]] = collections.defaultdict(list)
    for each in done:
        by_name[str(each.get("name", ""))].append(int(each.get("bytes") or 0))
    written = 0
    for name, count in uploads.items():
        sizes = by_name.get(name, [])
        if count > len(sizes) or (count < len(sizes) and len(set(sizes)) > 1):
            return None  # an upload not listed, or reads and writes of differing sizes
        written += sum(sizes) if count == len(sizes) else count * sizes[0]
    return total - written, written


def unmetered(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "the mount's remote control did not answer: what it moved is not metered"
    return (
        f"rclone moved {stats.get('bytes')} bytes through the mount, reads and writes not told"
        " apart by rclone 1.60's stats: not metered"
    )
