"""What the core reads from a TaskSpec: offer filters, deadlines, estimates, recovery, commands."""

from __future__ import annotations

import datetime as dt
import shlex
from pathlib import Path

import pytest

from skyd.errors import UnknownAcceleratorError
from skyd.model import Amount, OfferFilter
from skyd.spec import RecoveryStrategy, TaskSpec, command_task, parse_task


def test_plain_resources_become_one_on_demand_filter() -> None:
    spec = parse_task(
        """
resources:
  infra: aws/us-east-1
  accelerators: {A100: 8, H100: 8}
  cpus: 16+
  memory: 64
  instance_type: p4d.24xlarge
  max_hourly_cost: 40.5
  countries: [US]
run: x
"""
    )
    assert spec.offer_filters() == [
        OfferFilter(
            accelerators=(("A100", 8), ("H100", 8)),
            cpus=Amount(16.0, True),
            memory_gib=Amount(64.0, False),
            cloud="aws",
            region="us-east-1",
            instance_type="p4d.24xlarge",
            countries=("US",),
            spot=False,  # SkyPilot's default when use_spot is not written
            max_hourly_price_micros=40_500_000,
        )
    ]
    assert spec.requests_accelerators
    assert not spec.is_ordered


def test_use_spot_true_and_false_reach_the_filter() -> None:
    spot = parse_task("resources: {use_spot: true}\nrun: x\n").offer_filters()
    on_demand = parse_task("resources: {use_spot: false}\nrun: x\n").offer_filters()
    assert [f.spot for f in spot] == [True]
    assert [f.spot for f in on_demand] == [False]


def test_any_of_gives_one_filter_per_alternative_with_base_fields() -> None:
    spec = parse_task(
        """
resources:
  cloud: aws
  region: us-east-1
  accelerators: A100:1
  use_spot: true
  any_of:
    - region: us-west-2
    - infra: gcp
    - accelerators: [V100:1, T4:1]
      use_spot: false
run: x
"""
    )
    filters = spec.offer_filters()
    assert [(f.cloud, f.region) for f in filters] == [
        ("aws", "us-west-2"),
        ("gcp", None),  # another cloud does not inherit the base's AWS region
        ("aws", "us-east-1"),
    ]
    assert [f.accelerators for f in filters] == [
        (("A100", 1),),
        (("A100", 1),),
        (("V100", 1), ("T4", 1)),
    ]
    assert [f.spot for f in filters] == [True, True, False]
    assert not spec.is_ordered


def test_ordered_keeps_file_order_and_is_flagged() -> None:
    spec = parse_task(
        "resources:\n  ordered:\n    - infra: lambda\n    - infra: aws\n    - infra: gcp\nrun: x\n"
    )
    assert spec.is_ordered
    assert [f.cloud for f in spec.offer_filters()] == ["lambda", "aws", "gcp"]


def test_normalizer_is_applied_to_every_accelerator_name() -> None:
    spec = parse_task(
        "resources:\n"
        "  any_of:\n    - accelerators: a100-80gb:8\n    - accelerators: h100:8\n"
        "run: x\n"
    )
    names = {"a100-80gb": "A100-80GB", "h100": "H100"}
    filters = spec.offer_filters(names.__getitem__)
    assert [f.accelerators for f in filters] == [(("A100-80GB", 8),), (("H100", 8),)]
    # the spec itself keeps the names as written
    assert spec.alternatives[0].accelerators == (("a100-80gb", 8),)


def test_normalizer_errors_propagate() -> None:
    spec = parse_task("resources: {accelerators: Z9000}\nrun: x\n")

    def catalog_names(name: str) -> str:
        raise UnknownAcceleratorError(f"unknown accelerator {name!r}")

    with pytest.raises(UnknownAcceleratorError, match="Z9000"):
        spec.offer_filters(catalog_names)


def test_cpu_only_task_requests_no_accelerators() -> None:
    spec = parse_task("resources:\n  any_of: [{cpus: 2}, {cpus: 4}]\nrun: x\n")
    assert not spec.requests_accelerators
    assert parse_task(
        "resources:\n  any_of: [{cpus: 2}, {accelerators: T4}]\nrun: x\n"
    ).requests_accelerators


def test_relative_deadline_counts_from_submission() -> None:
    spec = parse_task("deadline: 36h\nrun: x\n")
    assert spec.deadline_at(1_000.0) == 1_000.0 + 36 * 3600
    assert spec.deadline_at(5_000.0) == 5_000.0 + 36 * 3600


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("90m", 5400), ("2d", 172_800), ("1h30m", 5400), ("1.5h", 5400), ("1w", 604_800)],
)
def test_duration_notations(written: str, seconds: float) -> None:
    assert parse_task(f"deadline: {written}\nrun: x\n").deadline_at(0.0) == seconds


def test_absolute_deadline_ignores_submission_time() -> None:
    spec = parse_task("deadline: 2027-01-02T03:04:05Z\nrun: x\n")
    expected = dt.datetime(2027, 1, 2, 3, 4, 5, tzinfo=dt.UTC).timestamp()
    assert spec.deadline_at(0.0) == expected
    assert spec.deadline_at(1e9) == expected


def test_no_deadline() -> None:
    assert parse_task("run: x\n").deadline_at(123.0) is None


def test_estimated_hours_per_accelerator_and_fallback() -> None:
    spec = parse_task("estimated_runtime: {A100: 2h, V100: 5h, '*': 8h}\nrun: x\n")
    assert spec.estimated_hours("A100") == 2.0
    assert spec.estimated_hours("v100") == 5.0  # catalog names may differ in case
    assert spec.estimated_hours("T4") == 8.0
    assert spec.estimated_hours() == 8.0


def test_estimated_hours_single_value_and_seconds() -> None:
    assert parse_task("estimated_runtime: 3h\nrun: x\n").estimated_hours("A100") == 3.0
    assert parse_task("estimated_runtime: 5400\nrun: x\n").estimated_hours() == 1.5


def test_estimated_hours_absent() -> None:
    assert parse_task("run: x\n").estimated_hours("A100") is None
    only_a100 = parse_task("estimated_runtime: {A100: 2h}\nrun: x\n")
    assert only_a100.estimated_hours("V100") is None
    assert only_a100.estimated_hours() is None


@pytest.mark.parametrize(
    ("text", "strategy"),
    [
        ("run: x\n", RecoveryStrategy.EAGER_NEXT_REGION),
        ("deadline: 2h\nrun: x\n", RecoveryStrategy.DEADLINE),
        ("deadline: 2h\njob_recovery: FAILOVER\nrun: x\n", RecoveryStrategy.FAILOVER),
    ],
)
def test_recovery_strategy_in_force(text: str, strategy: RecoveryStrategy) -> None:
    assert parse_task(text).recovery_strategy == strategy


def test_disk_size_under_both_names() -> None:
    resources = parse_task("resources: {disk_size: 1TB}\nrun: x\n").resources
    assert resources.disk_size_gib == resources.disk_size == 1024


def test_command_task_quotes_argv_and_names_itself(tmp_path: Path) -> None:
    spec = command_task(["python3", "-c", "print('hi there')"], base_dir=tmp_path)
    assert shlex.split(spec.run) == ["python3", "-c", "print('hi there')"]
    assert spec.name == "python3"
    assert spec.workdir is None
    assert TaskSpec.from_json(spec.to_json()) == spec


def test_command_task_takes_a_given_name(tmp_path: Path) -> None:
    spec = command_task(["/usr/bin/sleep", "5"], base_dir=tmp_path, name="nap")
    assert spec.name == "nap"
    assert command_task(["/usr/bin/sleep", "5"], base_dir=tmp_path).name == "sleep"
