"""What a checkpoint pull from a remote node reports: the bytes it brought back, and from where."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CheckpointPull:
    """One copy of an attempt's checkpoint directory from a node to the daemon host.

    `nbytes` is the length of the tar stream that crossed the network (what a cloud bills as
    egress): only the files new or changed since the last pull. `key` names the checkpoint
    version pulled (the attempt directory and the directory's fingerprint), so reporting the
    same pull twice (a retry, a daemon restarted before it marked the pull done) can be
    recognised. `provider` is None for attempts started before skyd recorded it.
    """

    attempt_dir: Path
    provider: str | None
    instance_id: str
    nbytes: int
    key: str


# Told of every pull that brought bytes back (checkpoints, whole or cut short, and batches of
# log reads, as CheckpointPull with their own keys); runs on the event loop, before the pull
# is marked done (so a daemon killed in between reports it again, under the same key).
TransferMeter = Callable[[CheckpointPull], None]


def save_pending(path: Path, pull: CheckpointPull) -> None:
    """Record a pull whose bytes crossed but which the meter has not taken yet, so a daemon
    killed before it did reports it after its restart (a later incremental pull of the same
    version would move nothing, hence charge nothing)."""
    partial = path.with_suffix(".partial")
    partial.write_text(
        json.dumps(
            {
                "attempt_dir": str(pull.attempt_dir),
                "provider": pull.provider,
                "instance_id": pull.instance_id,
                "nbytes": pull.nbytes,
                "key": pull.key,
            }
        )
    )
    partial.replace(path)


def load_pending(path: Path) -> CheckpointPull | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return CheckpointPull(
        Path(data["attempt_dir"]),
        data["provider"],
        str(data["instance_id"]),
        int(data["nbytes"]),
        str(data["key"]),
    )


# How far the bytes recorded of a stream may lag the bytes it brought: a daemon killed
# mid-stream reports at most this much less than crossed; a stream that fails reports all.
RECORD_EVERY = 1024 * 1024


class CutShort:
    """The bytes a pull has brought so far, recorded (as `pull`, with those bytes) in the
    pending file as they arrive, so they can be metered if the pull fails midway: at every
    RECORD_EVERY bytes (a killed daemon finds them there) and exactly once it failed."""

    def __init__(self, path: Path, pull: CheckpointPull) -> None:
        self.path = path
        self.pull = pull
        self.nbytes = 0
        self.recorded = 0

    def arrived(self, total: int) -> None:
        self.nbytes = total
        if total - self.recorded >= RECORD_EVERY or self.recorded == 0:
            self._record()

    def failed(self) -> CheckpointPull | None:
        """The cut-short pull to meter, if bytes crossed and it is still the pending one (a
        pull that failed after it was staged stays pending under its own key)."""
        if self.nbytes == 0 or load_pending(self.path) != self._with(self.recorded):
            return None
        self._record()
        return self._with(self.nbytes)

    def _record(self) -> None:
        save_pending(self.path, self._with(self.nbytes))
        self.recorded = self.nbytes

    def _with(self, nbytes: int) -> CheckpointPull:
        return dataclasses.replace(self.pull, nbytes=nbytes)
