"""The example tasks parse, the invalid one fails as documented, the checkpoint one resumes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from skyd.errors import SpecError
from skyd.spec import TaskSpec, parse_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUNNABLE = sorted(EXAMPLES.glob("*.yaml"))


def _parse(path: Path) -> TaskSpec:
    return parse_task(path.read_text(encoding="utf-8"), source=path.name, base_dir=path.parent)


def test_examples_exist() -> None:
    names = {path.name for path in RUNNABLE}
    assert {"hello.yaml", "workdir.yaml", "checkpoint.yaml"} <= names
    assert (EXAMPLES / "cloud" / "gpu_spot_deadline.yaml").is_file()
    assert (EXAMPLES / "invalid" / "invalid_typo.yaml").is_file()


@pytest.mark.parametrize("path", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_top_level_examples_run_on_a_cpu_only_host(path: Path) -> None:
    # `skyctl submit examples/*.yaml` must succeed on the local provider
    spec = _parse(path)
    assert not spec.requests_accelerators
    assert all(not f.spot and f.cloud in (None, "local") for f in spec.offer_filters())
    assert spec.num_nodes == 1


def test_workdir_example_resolves_to_its_code() -> None:
    spec = _parse(EXAMPLES / "workdir.yaml")
    assert spec.workdir == str(EXAMPLES / "hello_workdir")
    assert (Path(spec.workdir) / "count_words.py").is_file()


def test_gpu_example_is_spot_with_deadline() -> None:
    spec = _parse(EXAMPLES / "cloud" / "gpu_spot_deadline.yaml")
    assert spec.requests_accelerators
    assert spec.deadline is not None and spec.deadline.within_seconds == 36 * 3600
    assert spec.estimated_hours("A100") == 6.0
    assert [(f.cloud, f.spot) for f in spec.offer_filters()] == [
        ("aws", True),
        ("gcp", True),
        ("lambda", False),
    ]


def test_invalid_example_names_the_field_and_matches_its_comment() -> None:
    path = EXAMPLES / "invalid" / "invalid_typo.yaml"
    with pytest.raises(SpecError) as caught:
        _parse(path)
    assert caught.value.field == "resources.accelerator"
    # the file's own comment shows the message users will see
    assert caught.value.message in path.read_text(encoding="utf-8")


def _run_checkpoint_job(checkpoint_dir: Path, steps: int) -> str:
    spec = _parse(EXAMPLES / "checkpoint.yaml")
    env = {
        **os.environ,
        **spec.envs,
        "STEPS": str(steps),
        "STEP_SECONDS": "0",
        "SKYD_CHECKPOINT_DIR": str(checkpoint_dir),
    }
    done = subprocess.run(
        ["sh", "-c", spec.run], env=env, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


def test_checkpoint_example_counts_and_saves_progress(tmp_path: Path) -> None:
    out = _run_checkpoint_job(tmp_path, steps=3)
    assert out.splitlines() == ["step 1/3", "step 2/3", "step 3/3", "finished at step 3"]
    assert (tmp_path / "step").read_text().strip() == "3"


def test_checkpoint_example_resumes_after_saved_step(tmp_path: Path) -> None:
    (tmp_path / "step").write_text("4\n")
    out = _run_checkpoint_job(tmp_path, steps=6)
    assert out.splitlines() == [
        "resuming after step 4",
        "step 5/6",
        "step 6/6",
        "finished at step 6",
    ]
