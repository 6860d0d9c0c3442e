"""A task with bucket file_mounts is never placed where its buckets would not be mounted:
Kubernetes pods and Slurm batch jobs (their runners do not mount buckets yet) are blocked for
it, and a task pinned there is refused at submit naming why."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyctl.client import ApiError, DaemonClient
from skyd.spec import parse_task


def test_bucket_tasks_are_kept_off_kubernetes_and_slurm() -> None:
    spec = parse_task("file_mounts: {/d: 's3://lab/x'}\nrun: ls /d\n", source="t.yaml")
    [offer_filter] = spec.offer_filters()
    assert {"kubernetes", "slurm"} <= offer_filter.blocked
    assert {"local", "aws", "gcp", "azure", "ssh"}.isdisjoint(offer_filter.blocked)
    plain = parse_task("run: ls\n", source="t.yaml")
    assert not {"kubernetes", "slurm"} & plain.offer_filters()[0].blocked


def test_a_bucket_task_pinned_to_kubernetes_is_refused_with_the_reason(
    client: DaemonClient, tmp_path: Path
) -> None:
    with pytest.raises(ApiError) as caught:
        client.submit_task(
            "resources: {cloud: kubernetes}\nfile_mounts: {/d: 'gs://lab/x'}\nrun: ls /d\n",
            str(tmp_path),
            None,
        )
    assert caught.value.status == 422
    assert "bucket file_mounts are not mounted on kubernetes jobs yet" in caught.value.message
