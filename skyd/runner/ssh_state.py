"""An SSH attempt's local state files: their names (read and written by skyd.runner.json_files)."""

from __future__ import annotations

NODES_FILE = "ssh-nodes.json"
OFFSETS_FILE = "ssh-log-offsets.json"
STATUS_FILE = "ssh-status.json"
# how each bucket of the job got onto rank 0 (FUSE mount or copy), read by `show`
MOUNTS_FILE = "mounts.json"
# beside the shim on the node: remote_shim runs it by its own directory
CHECKPOINT_FILE = "ssh-checkpoint-seen"  # fingerprint of the checkpoints last pulled
UNMETERED_FILE = "ssh-checkpoint-unmetered.json"  # a pull whose bytes crossed, not yet metered
