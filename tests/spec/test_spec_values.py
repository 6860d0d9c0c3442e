"""The scalar notations of task files: amounts, sizes, durations, accelerators, infra, prices."""

from __future__ import annotations

import pytest

from skyd.model import Amount
from skyd.spec.values import (
    ValueProblem,
    parse_accelerators,
    parse_autostop_minutes,
    parse_cpus,
    parse_disk_size,
    parse_dollars_per_hour,
    parse_duration_text,
    parse_infra,
    parse_memory,
)


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        (4, Amount(4.0)),
        ("4", Amount(4.0)),
        ("4+", Amount(4.0, True)),
        (" 8 + ", Amount(8.0, True)),
        (0.5, Amount(0.5)),
        ("2.5+", Amount(2.5, True)),
    ],
)
def test_cpus(written: object, amount: Amount) -> None:
    assert parse_cpus(written) == amount


@pytest.mark.parametrize(
    ("written", "gib"),
    [
        (32, Amount(32.0)),
        ("32+", Amount(32.0, True)),
        ("64GB", Amount(64.0)),
        ("64gb+", Amount(64.0, True)),
        ("64GiB", Amount(64.0)),
        ("1024MB", Amount(1.0)),
        ("1TB", Amount(1024.0)),
        ("16g", Amount(16.0)),
        ("1048576KB", Amount(1.0)),
    ],
)
def test_memory_units_are_binary(written: object, gib: Amount) -> None:
    assert parse_memory(written) == gib


@pytest.mark.parametrize(
    ("written", "gib"), [(256, 256), ("256GB", 256), ("1.5TB", 1536), ("1500MB", 1)]
)
def test_disk_size_rounds_down_to_whole_gib(written: object, gib: int) -> None:
    assert parse_disk_size(written) == gib


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("36h", 129_600.0),
        ("90m", 5_400.0),
        ("2d", 172_800.0),
        ("1h30m", 5_400.0),
        ("1h 30m", 5_400.0),
        ("1H30M", 5_400.0),
        ("45s", 45.0),
        ("1w2d", 777_600.0),
        (".5h", 1_800.0),
    ],
)
def test_duration_text(text: str, seconds: float) -> None:
    assert parse_duration_text(text) == seconds


@pytest.mark.parametrize("text", ["", "36", "h", "1x", "1h30", "h1", "1h-30m", "soon"])
def test_not_durations(text: str) -> None:
    assert parse_duration_text(text) is None


@pytest.mark.parametrize(("written", "minutes"), [(10, 10), ("10m", 10), ("2h", 120), ("1d", 1440)])
def test_autostop_minutes(written: object, minutes: int) -> None:
    assert parse_autostop_minutes(written) == minutes


@pytest.mark.parametrize(
    ("written", "pairs"),
    [
        ("V100", (("V100", 1),)),
        ("A100-80GB:8", (("A100-80GB", 8),)),
        ("tpu-v4-8", (("tpu-v4-8", 1),)),
        ("A100:8.0", (("A100", 8),)),
        (["L4", "A10G:1"], (("L4", 1), ("A10G", 1))),
        ({"H100": 8, "A100": "8"}, (("H100", 8), ("A100", 8))),
        ({"H100:8": None}, (("H100", 8),)),
    ],
)
def test_accelerator_notations(written: object, pairs: tuple[tuple[str, int], ...]) -> None:
    assert parse_accelerators(written) == pairs


@pytest.mark.parametrize(
    "written", ["T4:0.5", "A100:0", "A100:-1", ":8", "A100:", {"T4": 1.5}, None]
)
def test_bad_accelerators(written: object) -> None:
    with pytest.raises(ValueProblem):
        parse_accelerators(written)


@pytest.mark.parametrize(
    ("written", "location"),
    [
        ("aws", ("aws", None, None)),
        ("AWS/us-east-1", ("aws", "us-east-1", None)),
        ("gcp/us-central1/us-central1-a", ("gcp", "us-central1", "us-central1-a")),
        ("*/us-east-1", (None, "us-east-1", None)),
        ("aws/*/us-east-1a", ("aws", None, "us-east-1a")),
        ("*", (None, None, None)),
    ],
)
def test_infra(written: str, location: tuple[str | None, str | None, str | None]) -> None:
    assert parse_infra(written) == location


@pytest.mark.parametrize(
    ("value", "raw", "micros"),
    [
        (0.1, "0.1", 100_000),
        (3.1, "3.10", 3_100_000),
        (40, "40", 40_000_000),
        (2.5, None, 2_500_000),
    ],
)
def test_prices_are_exact_micro_dollars(value: float, raw: str | None, micros: int) -> None:
    assert parse_dollars_per_hour(value, raw) == micros
