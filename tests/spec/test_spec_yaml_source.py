"""YAML handling of task files: same values as SafeLoader, located errors, hostile inputs."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from skyd.errors import SpecError
from skyd.spec import parse_task
from skyd.spec.yaml_source import load_yaml

SAMPLES = [
    "a: 1\nb: 2.5\nc: true\nd: null\ne: text\nf: '1'\ng: 0x1f\nh: 1_000\ni: .inf\n",
    "when: 2026-12-01T18:00:00Z\nday: 2026-12-01\nlist: [1, [2, [3]], {k: v}]\n",
    "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3\nsame: *b\n",
    "yes_word: yes\noff_word: Off\ntilde: ~\nempty:\n",
    "s: !!str 12\nf: !!float 3\nbin: !!binary aGVsbG8=\n",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_values_match_pyyaml_safe_load(text: str) -> None:
    value, _ = load_yaml(text, "t.yaml")
    assert value == yaml.safe_load(text)


def test_alias_yields_the_same_object() -> None:
    value, _ = load_yaml("a: &x [1, 2]\nb: *x\n", "t.yaml")
    assert value["a"] is value["b"]


def test_scalar_text_is_kept_as_written() -> None:
    _, sources = load_yaml("envs:\n  LR: 1.10\n  N: 007\n", "t.yaml")
    assert sources.scalar_text("envs.LR") == "1.10"
    assert sources.scalar_text("envs.N") == "007"
    assert sources.scalar_text("envs") is None  # a mapping has no scalar text


def test_positions_of_keys_and_values() -> None:
    _, sources = load_yaml("run: x\nresources:\n  any_of:\n    - cpus: 4\n", "t.yaml")
    assert sources.where("resources.any_of[0].cpus") == "t.yaml:4:13"
    assert sources.where("resources.any_of[0].cpus", of_key=True) == "t.yaml:4:7"
    # a path the file never wrote points at its nearest written parent
    assert sources.where("resources.any_of[0].memory") == "t.yaml:4:7"


def test_duplicate_field_is_refused_with_both_lines() -> None:
    with pytest.raises(SpecError) as caught:
        parse_task("run: a\nname: x\nrun: b\n")
    assert caught.value.field == "run"
    assert "task.yaml:3:1: run: set twice (first on line 1)" in caught.value.message


def test_duplicate_nested_field_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        parse_task("run: a\nresources:\n  cpus: 2\n  cpus: 4\n")
    assert caught.value.field == "resources.cpus"


def test_merge_keys_work_in_task_files() -> None:
    spec = parse_task(
        "resources:\n"
        "  <<: &gpu {accelerators: 'A100:8', use_spot: true}\n"
        "  any_of:\n"
        "    - {<<: *gpu, infra: aws}\n"
        "    - infra: gcp\n"
        "run: x\n"
    )
    assert [(f.cloud, f.accelerators, f.spot) for f in spec.offer_filters()] == [
        ("aws", (("A100", 8),), True),
        ("gcp", (("A100", 8),), True),
    ]


def test_complex_key_is_refused() -> None:
    with pytest.raises(SpecError, match="a key must be a plain word"):
        parse_task("? [a, b]\n: 1\nrun: x\n")


def test_unknown_tag_is_a_yaml_error() -> None:
    with pytest.raises(SpecError, match=r"task\.yaml:1:6: YAML syntax error"):
        parse_task("run: !shell echo\n")


def test_python_object_tags_are_not_constructed() -> None:
    with pytest.raises(SpecError, match="YAML syntax error"):
        parse_task("run: !!python/object/apply:os.system ['true']\n")


def test_deep_nesting_is_a_spec_error_not_a_crash() -> None:
    with pytest.raises(SpecError):
        parse_task("run: x\nenvs: " + "[" * 5000 + "]" * 5000 + "\n")


def test_timestamp_values_reach_deadline() -> None:
    spec = parse_task("deadline: 2027-03-04 05:06:07 +01:00\nrun: x\n")
    expected = dt.datetime(2027, 3, 4, 4, 6, 7, tzinfo=dt.UTC).timestamp()
    assert spec.deadline_at(0.0) == expected
