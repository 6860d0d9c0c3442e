"""What a checkpoint pull from a remote node reports: the bytes it brought back, and from where."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CheckpointPull:
    """One copy of an attempt's checkpoint directory from a node to the daemon host.

    `nbytes` is the length of the tar stream that crossed the network (what a cloud bills as
    egress). `key` names the checkpoint version pulled (the attempt directory and the
    directory's fingerprint), so reporting the same pull twice (a retry, a daemon restarted
    before it marked the pull done) can be recognised. `provider` is None for attempts
    started before skyd recorded it.
    """

    attempt_dir: Path
    provider: str | None
    instance_id: str
    nbytes: int
    key: str


# Told of every pull that brought bytes back; runs on the event loop, before the pull is
# marked done (so a daemon killed in between reports it again, under the same key).
TransferMeter = Callable[[CheckpointPull], None]
