"""How each bucket of a job got onto its machine (FUSE mount or copy), as the runner that
placed it wrote in the attempt's mounts.json (skyd.runner.buckets on this host,
skyd.runner.remote_buckets on a node), merged into the task summary `skyctl show` prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT = "mounts.json"


def annotate_mounts(task: dict[str, Any], attempt_dir: Path) -> None:
    """Give each storage mount of `task` (a public summary) a `how` once the job placed it."""
    mounts = task.get("storage_mounts")
    if not isinstance(mounts, dict) or not mounts:
        return
    try:
        report = json.loads((attempt_dir / REPORT).read_text())
    except (OSError, ValueError):
        return  # not started yet: the summary's note says what will happen
    if not isinstance(report, dict):
        return
    for dest, how in report.items():
        shown = mounts.get(dest)
        if isinstance(shown, dict) and isinstance(how, str):
            shown["how"] = how
            shown.pop("note", None)
