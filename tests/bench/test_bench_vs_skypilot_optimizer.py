"""bench.vs_skypilot_optimizer runs both optimizers offline on two corpus tasks (SkyPilot from the
virtualenv .ci/setup.d/50-skypilot.sh installs) and reports both sides per task."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.bench.bench_run import REPO, positive, run_bench

SKYPILOT_VENV = os.environ.get("SKYD_SKYPILOT_VENV", "/opt/skypilot-venv")
CORPUS = REPO / "tests" / "fixtures" / "skypilot_corpus"


def test_both_optimizers_answer_every_task_without_the_network(tmp_path: Path) -> None:
    assert (Path(SKYPILOT_VENV) / "bin" / "python").exists(), (
        f"no SkyPilot virtualenv at {SKYPILOT_VENV}: run .ci/setup.d/50-skypilot.sh"
    )
    # custom_image names an AWS image, whose size SkyPilot asks EC2: with no credentials it
    # used to retry for minutes; it must give up at once and place it with its default size
    for name in ("ray_train.yaml", "custom_image.yaml"):
        shutil.copy(CORPUS / name, tmp_path / name)
    result = run_bench(
        "vs_skypilot_optimizer", "--skypilot-venv", SKYPILOT_VENV, "--tasks", str(tmp_path),
        "--runs", "1", timeout=100,
    )  # fmt: skip
    assert result["skypilot_version"] == "0.14.1"
    assert all(rows > 0 for rows in result["catalog_rows_given_to_skypilot"].values())
    rows = {row["task"]: row for row in result["per_task"]}
    assert set(rows) == {"ray_train.yaml", "custom_image.yaml"}
    assert all(row["skyd"]["chosen"] for row in rows.values())
    chosen = {task: row["skypilot"]["chosen"] for task, row in rows.items()}
    assert chosen["custom_image.yaml"]["cloud"] == "aws"  # the task asks for AWS
    assert chosen["ray_train.yaml"]["cloud"]
    summary = result["summary"]
    assert (summary["tasks"], summary["skyd_placed"], summary["skypilot_placed"]) == (2, 2, 2)
    assert summary["both_placed_price_compared"] == 2
    assert positive(summary["price_ratio_median"]) and positive(summary["warm_time_ratio_median"])
