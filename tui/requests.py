"""Messages in which a pane or screen asks the app to act (the app owns I/O and dialogs)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class OpenJob(Message):
    def __init__(self, job_id: int) -> None:
        super().__init__()
        self.job_id = job_id


class CancelJob(Message):
    """Asks for the job to be cancelled, after the user confirms."""

    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__()
        self.job = job


class IncludeFinishedToggled(Message):
    def __init__(self, include: bool) -> None:
        super().__init__()
        self.include = include


class ClusterAction(Message):
    """Asks for `stop` or `down` of a cluster, after the user confirms."""

    def __init__(self, action: str, cluster: str) -> None:
        super().__init__()
        self.action = action
        self.cluster = cluster
