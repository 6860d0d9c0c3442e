"""scripts/e2e-clouds' flow in the suite: examples/cloud/ through a private daemon on the
three fake clouds (real sshd VMs), a GPU spot job preempted and resumed from its checkpoint
in another zone, every output read back with skyctl logs, nothing left running."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.testing.e2e_clouds import passed, run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cloud"


@pytest.mark.timeout(300)
async def test_examples_cloud_run_end_to_end_on_the_fakes() -> None:
    result = await run(EXAMPLES, budget_s=240)
    details = result.pop("_details")
    assert passed(result), (result, details)
    assert result["clouds"] == ["aws", "azure", "gcp"]
    assert result["jobs"] == 5 and result["preempted_and_resumed"] == 1
