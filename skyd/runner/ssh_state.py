"""An SSH attempt's local state files: their names and whole-or-nothing JSON reads/writes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

NODES_FILE = "ssh-nodes.json"
OFFSETS_FILE = "ssh-log-offsets.json"
STATUS_FILE = "ssh-status.json"
# how each bucket of the job got onto rank 0 (FUSE mount or copy), read by `show`
MOUNTS_FILE = "mounts.json"
# beside the shim on the node: remote_shim runs it by its own directory
CHECKPOINT_FILE = "ssh-checkpoint-seen"  # fingerprint of the checkpoints last pulled


def write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
