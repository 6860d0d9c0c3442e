"""`.skyignore` (gitignore syntax, as SkyPilot reads it): what a workdir copy leaves out.

Shared by the spec's size check and the runner's copy, so what is measured is what is copied.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pathspec

IGNORE_FILE = ".skyignore"


def ignore_rules(directory: Path) -> pathspec.PathSpec[Any] | None:
    """The directory's .skyignore rules, if it has one."""
    try:
        lines = (directory / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return pathspec.PathSpec.from_lines("gitignore", lines)


def copytree_ignore(root: Path) -> Callable[[str, list[str]], set[str]] | None:
    """An `ignore=` for shutil.copytree that leaves out what root's .skyignore lists."""
    rules = ignore_rules(root)
    if rules is None:
        return None

    def ignored(folder: str, names: list[str]) -> set[str]:
        relative = os.path.relpath(folder, root)
        prefix = "" if relative == "." else relative + "/"
        return {
            name
            for name in names
            if rules.match_file(prefix + name)
            or (os.path.isdir(os.path.join(folder, name)) and rules.match_file(prefix + name + "/"))
        }

    return ignored
