"""Task files in SkyPilot's YAML format → validated, immutable TaskSpec records."""

from skyd.spec.overrides import Overrides
from skyd.spec.parse import ParsedFile, ParseOptions, command_task, parse_file, parse_task
from skyd.spec.resources import AutostopSpec, ResourcesSpec
from skyd.spec.task import (
    DeadlineSpec,
    JobRecoverySpec,
    Objective,
    PipelineSpec,
    RecoveryStrategy,
    TaskSpec,
)
from skyd.spec.vocabulary import Vocabulary

__all__ = [
    "AutostopSpec",
    "DeadlineSpec",
    "JobRecoverySpec",
    "Objective",
    "Overrides",
    "ParseOptions",
    "ParsedFile",
    "PipelineSpec",
    "RecoveryStrategy",
    "ResourcesSpec",
    "TaskSpec",
    "Vocabulary",
    "command_task",
    "parse_file",
    "parse_task",
]
