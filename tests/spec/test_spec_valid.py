"""Valid SkyPilot-style task files parse to the expected TaskSpec, and survive a JSON round trip."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from skyd.model import Amount
from skyd.spec import (
    AutostopSpec,
    DeadlineSpec,
    JobRecoverySpec,
    Objective,
    RecoveryStrategy,
    ResourcesSpec,
    TaskSpec,
    parse_task,
)

_DEC_1_16Z = dt.datetime(2026, 12, 1, 16, 0, tzinfo=dt.UTC).timestamp()

# (id, task file, {dotted attribute path: expected value})
VALID: list[tuple[str, str, dict[str, Any]]] = [
    (
        "quickstart",
        """
resources:
  cloud: aws
  accelerators: A100:8
workdir: .
setup: |
  echo "Running setup."
run: |
  echo "Hello, SkyPilot!"
  conda env list
""",
        {
            "resources.cloud": "aws",
            "resources.accelerators": (("A100", 8),),
            "workdir": ".",
            "setup": 'echo "Running setup."\n',
            "run": 'echo "Hello, SkyPilot!"\nconda env list\n',
            "name": None,
            "num_nodes": 1,
        },
    ),
    (
        "distributed-training",
        """
name: minGPT-ddp
num_nodes: 2
resources:
  accelerators: A100:8
  cpus: 32+
  memory: 128+
  disk_size: 512
envs:
  MODEL_SIZE: 13b
  LR: 3.0e-4
  EPOCHS: 10
  USE_FP16: true
file_mounts:
  /data: ./data
  ~/.netrc: ~/.netrc
setup: pip install -r requirements.txt
run: |
  torchrun --nnodes=$SKYPILOT_NUM_NODES train.py
""",
        {
            "name": "minGPT-ddp",
            "num_nodes": 2,
            "resources.cpus": Amount(32.0, True),
            "resources.memory_gib": Amount(128.0, True),
            "resources.disk_size_gib": 512,
            "envs": {"MODEL_SIZE": "13b", "LR": "3.0e-4", "EPOCHS": "10", "USE_FP16": "true"},
            "file_mounts": {"/data": "./data", "~/.netrc": "~/.netrc"},
            "setup": "pip install -r requirements.txt",
        },
    ),
    (
        "infra-region-zone",
        """
resources:
  infra: aws/us-east-1/us-east-1a
  instance_type: p3.8xlarge
  use_spot: true
run: nvidia-smi
""",
        {
            "resources.cloud": "aws",
            "resources.region": "us-east-1",
            "resources.zone": "us-east-1a",
            "resources.instance_type": "p3.8xlarge",
            "resources.use_spot": True,
        },
    ),
    (
        "infra-wildcard-cloud",
        "resources:\n  infra: '*/us-east-1'\nrun: x\n",
        {"resources.cloud": None, "resources.region": "us-east-1", "resources.zone": None},
    ),
    (
        "infra-wildcard-region",
        "resources:\n  infra: AWS/*/us-east-1a\nrun: x\n",
        {"resources.cloud": "aws", "resources.region": None, "resources.zone": "us-east-1a"},
    ),
    (
        "cloud-region-zone-fields",
        "resources:\n  cloud: GCP\n  region: us-central1\n  zone: us-central1-a\nrun: x\n",
        {"resources.cloud": "gcp", "resources.region": "us-central1"},
    ),
    (
        "accelerator-default-count",
        "resources:\n  accelerators: V100\nrun: x\n",
        {"resources.accelerators": (("V100", 1),)},
    ),
    (
        "accelerator-list",
        "resources:\n  accelerators: [A100:8, H100:8, A100:8]\nrun: x\n",
        {"resources.accelerators": (("A100", 8), ("H100", 8))},
    ),
    (
        "accelerator-dict",
        "resources:\n  accelerators: {A100: 8, H100: '8', L4: 1.0}\nrun: x\n",
        {"resources.accelerators": (("A100", 8), ("H100", 8), ("L4", 1))},
    ),
    (
        "accelerator-flow-set",
        "resources:\n  accelerators: {A100:1, V100:1}\nrun: x\n",
        {"resources.accelerators": (("A100", 1), ("V100", 1))},
    ),
    (
        "cpus-memory-notations",
        "resources:\n  cpus: '16+'\n  memory: 1024MB\nrun: x\n",
        {"resources.cpus": Amount(16.0, True), "resources.memory_gib": Amount(1.0, False)},
    ),
    (
        "cpus-number",
        "resources:\n  cpus: 0.5\n  memory: 64GB+\n  disk_size: 256GB\nrun: x\n",
        {
            "resources.cpus": Amount(0.5, False),
            "resources.memory_gib": Amount(64.0, True),
            "resources.disk_size_gib": 256,
        },
    ),
    (
        "any-of-merged-over-base",
        """
resources:
  accelerators: H100:8
  use_spot: true
  any_of:
    - infra: aws/us-west-2
    - infra: gcp/us-central1
      use_spot: false
run: x
""",
        {
            "is_ordered": False,
            "resources.any_of": (
                ResourcesSpec(
                    cloud="aws", region="us-west-2", accelerators=(("H100", 8),), use_spot=True
                ),
                ResourcesSpec(
                    cloud="gcp",
                    region="us-central1",
                    accelerators=(("H100", 8),),
                    use_spot=False,
                ),
            ),
        },
    ),
    (
        "ordered-regions-keep-cloud",
        """
resources:
  cloud: aws
  region: us-east-1
  zone: us-east-1a
  ordered:
    - region: us-east-2
    - zone: us-east-1b
    - {}
run: x
""",
        {
            "is_ordered": True,
            "alternatives": (
                ResourcesSpec(cloud="aws", region="us-east-2"),
                ResourcesSpec(cloud="aws", region="us-east-1", zone="us-east-1b"),
                ResourcesSpec(cloud="aws", region="us-east-1", zone="us-east-1a"),
            ),
        },
    ),
    (
        "job-recovery-top-level",
        """
job_recovery:
  strategy: failover
  max_restarts_on_errors: 3
run: x
""",
        {
            "job_recovery": JobRecoverySpec(
                strategy=RecoveryStrategy.FAILOVER, max_restarts_on_errors=3
            ),
            "recovery_strategy": RecoveryStrategy.FAILOVER,
        },
    ),
    (
        "job-recovery-under-resources",
        "resources:\n  job_recovery: {strategy: EAGER_NEXT_REGION}\nrun: x\n",
        {"job_recovery.strategy": RecoveryStrategy.EAGER_NEXT_REGION},
    ),
    (
        "job-recovery-shorthand",
        "resources:\n  job_recovery: Deadline\nrun: x\n",
        {"job_recovery.strategy": RecoveryStrategy.DEADLINE},
    ),
    (
        "job-recovery-none",
        "resources:\n  job_recovery: none\nrun: x\n",
        {
            "job_recovery": JobRecoverySpec(),
            "recovery_strategy": RecoveryStrategy.EAGER_NEXT_REGION,
        },
    ),
    (
        "skyd-fields",
        """
name: sweep-7
deadline: 1h30m
estimated_runtime: {A100: 2h, V100: 5h, '*': 9h}
project: vision
priority: -5
objective: Time
migrate: true
resources:
  accelerators: {A100: 1, V100: 1}
  max_hourly_cost: 3.10
  countries: [us, DE]
run: python sweep.py
""",
        {
            "deadline": DeadlineSpec(text="1h30m", within_seconds=5400.0),
            "estimated_runtime": {"A100": 7200.0, "V100": 18000.0, "*": 32400.0},
            "project": "vision",
            "priority": -5,
            "objective": Objective.TIME,
            "migrate": True,
            "resources.max_hourly_cost_micros": 3_100_000,
            "resources.countries": ("US", "DE"),
            "recovery_strategy": RecoveryStrategy.DEADLINE,
        },
    ),
    (
        "deadline-iso-yaml-timestamp",
        "deadline: 2026-12-01T18:00:00+02:00\nrun: x\n",
        {"deadline": DeadlineSpec(text="2026-12-01T18:00:00+02:00", at_epoch=_DEC_1_16Z)},
    ),
    (
        "deadline-iso-string-z",
        "deadline: '2026-12-01T16:00Z'\nrun: x\n",
        {"deadline": DeadlineSpec(text="2026-12-01T16:00Z", at_epoch=_DEC_1_16Z)},
    ),
    (
        "estimated-runtime-seconds",
        "estimated_runtime: 5400\nrun: x\n",
        {"estimated_runtime": {"*": 5400.0}},
    ),
    (
        "autostop-forms",
        """
resources:
  autostop: {idle_minutes: 10, down: true}
  ordered:
    - autostop: true
    - autostop: false
    - autostop: 2h
    - autostop: 15
run: x
""",
        {
            "resources.autostop": AutostopSpec(idle_minutes=10, down=True),
            "alternatives": (
                ResourcesSpec(autostop=AutostopSpec(idle_minutes=5)),
                ResourcesSpec(autostop=AutostopSpec(enabled=False, idle_minutes=5)),
                ResourcesSpec(autostop=AutostopSpec(idle_minutes=120)),
                ResourcesSpec(autostop=AutostopSpec(idle_minutes=15)),
            ),
        },
    ),
    (
        "image-and-labels-kept",
        """
resources:
  image_id: {us-east-1: ami-123, us-west-2: ami-456}
  labels: {team: nlp, cost-center: 42}
  ordered:
    - image_id: docker:ubuntu:22.04
run: x
""",
        {
            "resources.image_id": {"us-east-1": "ami-123", "us-west-2": "ami-456"},
            "resources.labels": {"team": "nlp", "cost-center": "42"},
            "alternatives": (
                ResourcesSpec(
                    image_id="docker:ubuntu:22.04", labels={"team": "nlp", "cost-center": "42"}
                ),
            ),
        },
    ),
    (
        "empty-optional-blocks",
        "name: n\nresources:\nsetup:\nenvs: {}\nrun: echo\n",
        {"resources": ResourcesSpec(), "setup": None, "envs": {}},
    ),
    (
        "numeric-name-and-project-kept-as-written",
        "name: 2024\nproject: 007\nrun: x\n",
        {"name": "2024", "project": "007"},
    ),
]


def _attribute(spec: TaskSpec, dotted: str) -> object:
    value: object = spec
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, e in VALID], ids=[i for i, *_ in VALID]
)
def test_valid_task_parses_to_expected_fields(text: str, expected: dict[str, Any]) -> None:
    spec = parse_task(text)
    for dotted, value in expected.items():
        assert _attribute(spec, dotted) == value, dotted


@pytest.mark.parametrize("text", [t for _, t, _ in VALID], ids=[i for i, *_ in VALID])
def test_json_round_trip_is_identity(text: str) -> None:
    spec = parse_task(text)
    again = TaskSpec.from_json(spec.to_json())
    assert again == spec
    assert again.to_json() == spec.to_json()


def test_spec_is_immutable() -> None:
    spec = parse_task("run: x\n")
    with pytest.raises(ValueError, match="frozen"):
        setattr(spec, "run", "y")  # noqa: B010 (an attribute assignment, as a caller would try)


# -- generated specs -------------------------------------------------------------

_ACCELERATORS = ["A100", "H100", "V100", "T4", "L4", "A10G"]
_CLOUD_PATHS = ["aws", "aws/us-east-1", "gcp/us-central1/us-central1-a", "*/eu-west-1", "lambda"]


def _random_resources(rng: random.Random, *, candidate: bool) -> dict[str, Any]:
    block: dict[str, Any] = {}
    if rng.random() < 0.5:
        block["infra"] = rng.choice(_CLOUD_PATHS)
    if rng.random() < 0.6:
        names = rng.sample(_ACCELERATORS, rng.randint(1, 3))
        form = rng.randrange(3)
        if form == 0:
            block["accelerators"] = f"{names[0]}:{rng.choice([1, 2, 4, 8])}"
        elif form == 1:
            block["accelerators"] = [f"{n}:{rng.choice([1, 8])}" for n in names]
        else:
            block["accelerators"] = {n: rng.choice([1, 2, 8]) for n in names}
    if rng.random() < 0.5:
        block["cpus"] = rng.choice([2, "4+", 0.5, "16+", 96])
    if rng.random() < 0.5:
        block["memory"] = rng.choice([16, "32+", "64GB", "512MB+", 7.5])
    if rng.random() < 0.3:
        block["use_spot"] = rng.random() < 0.5
    if rng.random() < 0.3:
        block["max_hourly_cost"] = rng.choice([0.1, 2.5, 33.333333, 100])
    if rng.random() < 0.3:
        block["countries"] = rng.sample(["US", "DE", "FR", "JP"], 2)
    if rng.random() < 0.2:
        block["autostop"] = rng.choice([True, False, 10, "1h", {"idle_minutes": 3, "down": True}])
    if not candidate and rng.random() < 0.5:
        key = rng.choice(["any_of", "ordered"])
        block[key] = [_random_resources(rng, candidate=True) for _ in range(rng.randint(1, 3))]
    return block


def _random_task(rng: random.Random) -> dict[str, Any]:
    task: dict[str, Any] = {"run": "python train.py --step ${STEP}"}
    if rng.random() < 0.7:
        task["name"] = f"job-{rng.randrange(1000)}"
    if rng.random() < 0.5:
        task["envs"] = {f"V{i}": rng.choice(["a", 1, 2.5, True]) for i in range(rng.randint(0, 4))}
    if rng.random() < 0.5:
        task["setup"] = "pip install -r requirements.txt"
    if rng.random() < 0.5:
        task["num_nodes"] = rng.randint(1, 8)
    if rng.random() < 0.4:
        task["deadline"] = rng.choice(["36h", "90m", "2d", "1h30m", "2027-01-01T00:00:00Z"])
    if rng.random() < 0.4:
        task["estimated_runtime"] = rng.choice(["3h", 5400, {"A100": "2h", "V100": "5h"}])
    if rng.random() < 0.3:
        task["job_recovery"] = {
            "strategy": rng.choice(["FAILOVER", "eager_next_region", "deadline"]),
            "max_restarts_on_errors": rng.randint(0, 5),
        }
    if rng.random() < 0.3:
        task["priority"] = rng.randint(-100, 100)
    if rng.random() < 0.8:
        task["resources"] = _random_resources(rng, candidate=False)
    return task


@pytest.mark.parametrize("seed", range(200))
def test_generated_specs_round_trip_through_json(seed: int) -> None:
    import yaml

    rng = random.Random(seed)
    text = yaml.safe_dump(_random_task(rng), sort_keys=rng.random() < 0.5)
    spec = parse_task(text, source=f"generated-{seed}.yaml")
    assert TaskSpec.from_json(spec.to_json()) == spec
    assert len(spec.offer_filters()) == len(spec.alternatives) >= 1


def test_base_dir_resolves_workdir_and_mounts(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "data.csv").write_text("a,b\n")
    spec = parse_task(
        "workdir: ./code\n"
        "file_mounts:\n  /remote/data.csv: data.csv\n  ~/code: code/../code\n"
        "run: x\n",
        base_dir=tmp_path,
    )
    assert spec.workdir == str(tmp_path / "code")
    assert spec.file_mounts == {
        "/remote/data.csv": str(tmp_path / "data.csv"),
        "~/code": str(tmp_path / "code"),
    }


def test_without_base_dir_paths_are_kept_as_written() -> None:
    spec = parse_task("workdir: ~/nowhere/at/all\nfile_mounts: {/d: ../x}\nrun: x\n")
    assert spec.workdir == "~/nowhere/at/all"
    assert spec.file_mounts == {"/d": "../x"}


_JUNK: list[object] = [
    None,
    True,
    -3,
    0,
    2.5,
    "",
    "  ",
    "x:y",
    "4x",
    [],
    [1, [2]],
    {},
    {"a": {"b": 1}},
]


def _mutate(rng: random.Random, node: Any, path: str) -> tuple[Any, str]:
    """`node` with one value somewhere replaced by junk (or one key misspelled), and its path."""
    if isinstance(node, dict) and node and rng.random() < 0.8:
        key = rng.choice(list(node))
        if rng.random() < 0.15:
            misspelled = key[:-1] if len(key) > 1 else key + "x"
            changed = {k: v for k, v in node.items() if k != key}
            changed[misspelled] = node[key]
            return changed, f"{path}.{misspelled}".lstrip(".")
        inner, where = _mutate(rng, node[key], f"{path}.{key}".lstrip("."))
        return {**node, key: inner}, where
    if isinstance(node, list) and node and rng.random() < 0.8:
        index = rng.randrange(len(node))
        inner, where = _mutate(rng, node[index], f"{path}[{index}]")
        return [*node[:index], inner, *node[index + 1 :]], where
    return rng.choice(_JUNK), path


@pytest.mark.parametrize("seed", range(300))
def test_damaged_specs_fail_only_with_located_spec_errors(seed: int) -> None:
    import yaml

    from skyd.errors import SpecError

    rng = random.Random(seed)
    damaged, where = _mutate(rng, _random_task(rng), "")
    try:
        parse_task(yaml.safe_dump(damaged))
    except SpecError as error:
        if not where:
            return  # the whole document was replaced: a file-level complaint, no field
        # every complaint about a damaged field names a field, at or around the damage
        assert error.field, (where, error.message)
        assert error.field.startswith(where.split("[")[0].split(".")[0]), (where, error.field)
