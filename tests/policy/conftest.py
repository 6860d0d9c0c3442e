"""Make the repository root importable so tests can drive the bench simulator (bench.spot)."""

import sys
from pathlib import Path

import pytest

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(autouse=True)
def _private_optimum_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """bench.spot keeps optimum results on disk: tests keep theirs apart."""
    from bench.spot import sweep

    monkeypatch.setattr(sweep, "CACHE_DIR", tmp_path / "optimum-cache")
