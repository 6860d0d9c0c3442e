"""Fixtures for skyctl's tests: a short socket directory and a scripted responder on it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyctl.testing import ScriptedResponder


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Unix socket paths are limited to ~107 bytes; pytest's tmp_path can be longer than that.
    path = Path(tempfile.mkdtemp(prefix="skyctl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def responder(socket_dir: Path) -> Iterator[ScriptedResponder]:
    with ScriptedResponder(str(socket_dir / "skyd.sock")) as scripted:
        yield scripted
