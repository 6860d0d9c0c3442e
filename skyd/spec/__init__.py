"""Task files in SkyPilot's YAML format → validated, immutable TaskSpec records."""

from skyd.spec.parse import command_task, parse_task
from skyd.spec.resources import AutostopSpec, ResourcesSpec
from skyd.spec.task import (
    DeadlineSpec,
    JobRecoverySpec,
    Objective,
    RecoveryStrategy,
    TaskSpec,
)

__all__ = [
    "AutostopSpec",
    "DeadlineSpec",
    "JobRecoverySpec",
    "Objective",
    "RecoveryStrategy",
    "ResourcesSpec",
    "TaskSpec",
    "command_task",
    "parse_task",
]
