"""Telling a FUSE mount's reads from its writes in rclone 1.60's stats (skyd/runner/
fuse_meter.py): exact where the uploads the mount logged account for whole transfers, and
not metered (None) where they cannot be told apart."""

from __future__ import annotations

import collections
import io
import json
from pathlib import Path
from typing import Any

from skyd.runner import fuse_meter


def _stats(*transfers: tuple[str, int], total: int | None = None) -> dict[str, Any]:
    done = [{"name": name, "bytes": nbytes, "size": nbytes} for name, nbytes in transfers]
    total = sum(nbytes for _, nbytes in transfers) if total is None else total
    return {"bytes": total, "transferring": [], "transferred": done}


def test_reads_and_writes_are_told_apart_by_the_uploads_logged() -> None:
    nothing: collections.Counter[str] = collections.Counter()
    # no upload: every byte counted was read, however many files (the list may be cut)
    assert fuse_meter.split(_stats(("a", 5), total=10_000), nothing) == (10_000, 0)
    uploads = collections.Counter({"w": 1, "same": 1})
    stats = _stats(("a", 5), ("w", 7), ("same", 3), ("same", 3))
    assert fuse_meter.split(stats, uploads) == (8, 10)  # "same" read once and written once


def test_what_cannot_be_told_apart_is_not_metered() -> None:
    uploads = collections.Counter({"w": 1})
    assert fuse_meter.split(None, uploads) is None  # the server did not answer
    assert fuse_meter.split(_stats(("w", 7), total=99), uploads) is None  # the list is cut
    assert fuse_meter.split(_stats(("a", 5)), uploads) is None  # the upload is not listed
    assert fuse_meter.split(_stats(("w", 7), ("w", 2)), uploads) is None  # sizes differ
    busy = _stats(("w", 7)) | {"transferring": [{"name": "x", "bytes": 1}]}
    assert fuse_meter.split(busy, uploads) is None


def test_the_mount_log_is_relayed_as_text_and_names_its_uploads(tmp_path: Path) -> None:
    lines = [
        "plain line before logging was set up\n",
        json.dumps({"level": "warning", "msg": "Serving remote control"}) + "\n",
        json.dumps({"level": "info", "msg": "Copied (new)", "object": "w.bin",
                    "objectType": "*local.Object"}) + "\n",
        json.dumps({"level": "info", "msg": "Copied (new)", "object": "elsewhere",
                    "objectType": "*s3.Object"}) + "\n",
    ]  # fmt: skip
    path = tmp_path / "rclone-mount-0.log"
    path.write_text("".join(lines))
    out = io.StringIO()
    assert fuse_meter.relay_log(str(path), out) == collections.Counter({"w.bin": 1})
    assert out.getvalue() == (
        "plain line before logging was set up\nrclone warning: Serving remote control\n"
    )
