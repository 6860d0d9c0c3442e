"""The bytes a job's buckets moved, per node and direction, as the attempt reported them.

Where the buckets are copied (skyd.runner.remote_buckets on a VM or lab host, from rclone's
own stats; skyd.runner.buckets on this host, from the objects' sizes) each node's attempt
directory gets REPORT: a list of {dest, url, store, direction ("in": read from the bucket,
"out": written back to it), bytes} (bytes null: not metered, a FUSE mount). The SSH runner
keeps every node's list in SSH_REPORT beside the attempt, with the node's instance. The
scheduler reads them back here for the daemon to charge (skyd.accounting.bucket_transfers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from skyd.runner.json_files import read_json, write_json

REPORT = "bucket-transfers.json"
SSH_REPORT = "ssh-bucket-transfers.json"  # rank -> {instance_id, transfers: REPORT's list}

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class BucketTraffic:
    """`nbytes` read from (direction "in") or written to ("out") the bucket at `url`, mounted
    at `dest`, by node `rank` of an attempt, which ran on `instance_id`."""

    rank: int
    instance_id: str
    dest: str
    url: str
    store: str
    direction: Direction
    nbytes: int


def parse(raw: object, rank: int, instance_id: str) -> list[BucketTraffic]:
    """The metered entries of a REPORT list (a node's file is not trusted to be well formed:
    what is not an entry with a byte count is left out)."""
    found = []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, dict):
            continue
        nbytes, direction = entry.get("bytes"), entry.get("direction")
        if not isinstance(nbytes, int) or isinstance(nbytes, bool) or nbytes < 0:
            continue
        if direction not in ("in", "out"):
            continue
        found.append(
            BucketTraffic(
                rank,
                instance_id,
                str(entry.get("dest", "")),
                str(entry.get("url", "")),
                str(entry.get("store", "")),
                "in" if direction == "in" else "out",
                nbytes,
            )
        )
    return found


def read_local(attempt_dir: Path, rank: int, instance_id: str) -> list[BucketTraffic]:
    """A node on this host wrote its REPORT into its own attempt directory."""
    return parse(read_json(attempt_dir / REPORT), rank, instance_id)


def keep_node(attempt_dir: Path, rank: int, instance_id: str, raw: object) -> None:
    """Keep what a remote node reported (its shim's status answer) beside the attempt."""
    saved = read_json(attempt_dir / SSH_REPORT)
    saved = saved if isinstance(saved, dict) else {}
    entry = {"instance_id": instance_id, "transfers": raw}
    if saved.get(str(rank)) != entry:
        saved[str(rank)] = entry
        write_json(attempt_dir / SSH_REPORT, saved)


def read_remote(attempt_dir: Path) -> list[BucketTraffic]:
    """What every remote node of the attempt reported so far."""
    saved = read_json(attempt_dir / SSH_REPORT)
    found = []
    for rank, entry in (saved if isinstance(saved, dict) else {}).items():
        if isinstance(entry, dict) and str(rank).isdigit():
            found += parse(entry.get("transfers"), int(rank), str(entry.get("instance_id", "")))
    return found
