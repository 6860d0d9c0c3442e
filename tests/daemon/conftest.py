"""Fixtures shared by the daemon tests."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyd.testing import fake_docker


@pytest.fixture
def docker_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fake docker first on PATH; yields the log its calls are recorded in."""
    root = Path(tempfile.mkdtemp(prefix="skyd-docker-"))
    tools, log = fake_docker.tools(str(root))
    (root / "bin").mkdir()
    (root / "bin" / "docker").write_text(tools["docker"])
    (root / "bin" / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
    yield Path(log)
    shutil.rmtree(root, ignore_errors=True)
