"""Every way a task file can be wrong gives a SpecError naming the field, the value and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.errors import SpecError
from skyd.spec import TaskSpec, command_task, parse_task

# (id, task file, field named in SpecError.field, fragments the message must contain)
INVALID: list[tuple[str, str, str | None, tuple[str, ...]]] = [
    # -- the file as a whole
    ("empty", "", None, ("task.yaml", "empty", "run:")),
    ("only-comments", "# nothing here\n", None, ("empty",)),
    ("top-level-list", "- run: x\n", None, ("task.yaml:1:1", "top level is a list", "mapping")),
    ("top-level-scalar", "hello\n", None, ("top level is 'hello'",)),
    ("yaml-syntax", "run: x\nresources: [\n", None, ("task.yaml:3:1", "YAML syntax error")),
    ("yaml-bad-indent", "run: x\n  envs: 1\n", None, ("task.yaml:2:7", "YAML syntax error")),
    ("two-documents", "run: x\n---\nrun: y\n", None, ("task.yaml", "pipeline of 2 tasks")),
    ("missing-run", "name: n\nsetup: echo\n", "run", ("run: required",)),
    ("blank-run", "run: '   '\n", "run", ("run: required",)),
    # -- unknown fields and did-you-mean
    (
        "typo-accelerator",
        "resources:\n  accelerator: V100\nrun: x\n",
        "resources.accelerator",
        ("task.yaml:2:3", "resources.accelerator: unknown field; did you mean 'accelerators'?"),
    ),
    (
        "familiar-gpus-not-cpus",
        "resources:\n  gpus: 1\nrun: x\n",
        "resources.gpus",
        ("did you mean 'accelerators'?",),
    ),
    ("typo-top-level", "nam: x\nrun: x\n", "nam", ("unknown field; did you mean 'name'?",)),
    ("typo-envs", "env: {A: 1}\nrun: x\n", "env", ("did you mean 'envs'?",)),
    ("typo-num-nodes", "num_node: 2\nrun: x\n", "num_node", ("did you mean 'num_nodes'?",)),
    ("typo-use-spot", "resources: {usespot: true}\nrun: x\n", "resources.usespot", ("'use_spot'",)),
    (
        "no-close-match-lists-allowed",
        "zzzz: 1\nrun: x\n",
        "zzzz",
        ("unknown field; allowed fields here are: name, workdir",),
    ),
    (
        "typo-in-alternative",
        "resources:\n  any_of:\n    - regoin: us-east-1\nrun: x\n",
        "resources.any_of[0].regoin",
        ("task.yaml:3:7", "did you mean 'region'?"),
    ),
    (
        "typo-in-job-recovery",
        "job_recovery: {strategy: FAILOVER, max_restarts: 2}\nrun: x\n",
        "job_recovery.max_restarts",
        ("did you mean 'max_restarts_on_errors'?",),
    ),
    (
        "typo-in-autostop",
        "resources:\n  autostop: {idle_minute: 5}\nrun: x\n",
        "resources.autostop.idle_minute",
        ("did you mean 'idle_minutes'?",),
    ),
    ("non-string-key", "1: x\nrun: x\n", "1", ("is not a field name",)),
    # -- SkyPilot fields skyd does not support
    ("ports", "resources: {ports: 70000}\nrun: x\n", "resources.ports", ("out of range",)),
    (
        "ports-text",
        "resources: {ports: web}\nrun: x\n",
        "resources.ports",
        ("'web' is not a port",),
    ),
    ("secret-no-value", "secrets: {A: null}\nrun: x\n", "secrets.A", ("--secret A=VALUE",)),
    (
        "env-no-value",
        "envs: {HF_TOKEN: null}\nrun: x\n",
        "envs.HF_TOKEN",
        ("--env HF_TOKEN=VALUE",),
    ),
    (
        "secret-also-env",
        "envs: {A: x}\nsecrets: {A: y}\nrun: x\n",
        "secrets.A",
        ("keep it only in secrets",),
    ),
    ("service", "service: {replicas: 2}\nrun: x\n", "service", ("batch jobs",)),
    (
        "disk-tier",
        "resources: {disk_tier: fastest}\nrun: x\n",
        "resources.disk_tier",
        ("low, medium, high, ultra, best",),
    ),
    (
        "spot-recovery-renamed",
        "resources: {spot_recovery: FAILOVER}\nrun: x\n",
        "resources.spot_recovery",
        ("use job_recovery",),
    ),
    (
        "storage-mount-mode",
        "file_mounts:\n  /ckpt:\n    source: s3://bucket\n    mode: FUSE\nrun: x\n",
        "file_mounts./ckpt.mode",
        ("'FUSE' is not a mode", "MOUNT, COPY, MOUNT_CACHED"),
    ),
    (
        "bucket-url-mount",
        "file_mounts:\n  /data: cos://my-bucket/data\nrun: x\n",
        "file_mounts./data",
        ("'cos://my-bucket/data'", "not supported yet", "local path"),
    ),
    ("gs-workdir", "workdir: gs://bucket/code\nrun: x\n", "workdir", ("not supported yet",)),
    (
        "git-workdir",
        "workdir: {url: 'not a url'}\nrun: x\n",
        "workdir.url",
        ("is not a git repository URL",),
    ),
    # -- scalar fields
    ("run-list", "run: [a, b]\n", "run", ("run: |",)),
    ("run-number", "run: 42\n", "run", ("42 is not a shell script",)),
    ("setup-mapping", "setup: {a: b}\nrun: x\n", "setup", ("a mapping is not a shell script",)),
    ("name-list", "name: [a]\nrun: x\n", "name", ("a list is not a name",)),
    ("name-too-long", f"name: {'n' * 201}\nrun: x\n", "name", ("too long",)),
    ("num-nodes-zero", "num_nodes: 0\nrun: x\n", "num_nodes", ("0 is out of range", "between 1")),
    ("num-nodes-huge", "num_nodes: 1000000000\nrun: x\n", "num_nodes", ("between 1 and 512",)),
    ("num-nodes-text", "num_nodes: two\nrun: x\n", "num_nodes", ("'two' is not a whole number",)),
    ("num-nodes-fraction", "num_nodes: 1.5\nrun: x\n", "num_nodes", ("1.5 is not a whole number",)),
    ("num-nodes-bool", "num_nodes: true\nrun: x\n", "num_nodes", ("true is not a whole number",)),
    ("priority-range", "priority: 101\nrun: x\n", "priority", ("between -100 and 100",)),
    ("objective", "objective: speed\nrun: x\n", "objective", ("'speed'", "cost, time")),
    ("migrate-text", "migrate: 'sometimes'\nrun: x\n", "migrate", ("not true or false",)),
    ("envs-list", "envs: [A]\nrun: x\n", "envs", ("a list is not a mapping", "KEY: VALUE")),
    ("envs-null", "envs:\n  TOKEN:\nrun: x\n", "envs.TOKEN", ("has no value",)),
    ("envs-bad-name", "envs: {1ABC: x}\nrun: x\n", "envs.1ABC", ("not a valid environment",)),
    ("envs-nested", "envs: {A: {b: c}}\nrun: x\n", "envs.A", ("a mapping is not text",)),
    ("file-mounts-list", "file_mounts: [a]\nrun: x\n", "file_mounts", ("REMOTE_PATH: LOCAL_PATH",)),
    # -- deadline and estimates
    ("deadline-no-unit", "deadline: 36\nrun: x\n", "deadline", ("36 has no unit", "36h")),
    ("deadline-garbage", "deadline: soon\nrun: x\n", "deadline", ("'soon'", "duration")),
    ("deadline-no-tz", "deadline: 2026-12-01T18:00:00\nrun: x\n", "deadline", ("no timezone",)),
    ("deadline-date-only", "deadline: 2026-12-01\nrun: x\n", "deadline", ("date without a time",)),
    ("deadline-zero", "deadline: 0h\nrun: x\n", "deadline", ("longer than 0",)),
    (
        "estimate-bad",
        "estimated_runtime: forever\nrun: x\n",
        "estimated_runtime",
        ("'forever' is not a duration",),
    ),
    (
        "estimate-bad-per-accelerator",
        "estimated_runtime: {A100: 2h, V100: lots}\nrun: x\n",
        "estimated_runtime.V100",
        ("'lots' is not a duration",),
    ),
    (
        "estimate-negative",
        "estimated_runtime: -5\nrun: x\n",
        "estimated_runtime",
        ("longer than 0",),
    ),
    # -- job recovery
    (
        "strategy-unknown",
        "job_recovery: {strategy: RETRY}\nrun: x\n",
        "job_recovery.strategy",
        ("'RETRY' is not a recovery strategy", "FAILOVER, EAGER_NEXT_REGION, DEADLINE"),
    ),
    (
        "restarts-negative",
        "job_recovery: {max_restarts_on_errors: -1}\nrun: x\n",
        "job_recovery.max_restarts_on_errors",
        ("at least 0",),
    ),
    (
        "recovery-twice",
        "job_recovery: FAILOVER\nresources: {job_recovery: FAILOVER}\nrun: x\n",
        "resources.job_recovery",
        ("keep only one",),
    ),
    ("recovery-list", "job_recovery: [a]\nrun: x\n", "job_recovery", ("strategy name",)),
    # -- resources
    ("resources-list", "resources: [a]\nrun: x\n", "resources", ("is not a mapping",)),
    (
        "cpus-bad",
        "resources:\n  cpus: 4x\nrun: x\n",
        "resources.cpus",
        ("task.yaml:2:9", "resources.cpus: '4x' is not a number; use N or N+ (e.g. 4 or 4+)"),
    ),
    ("cpus-zero", "resources: {cpus: 0}\nrun: x\n", "resources.cpus", ("more than 0",)),
    ("cpus-bool", "resources: {cpus: true}\nrun: x\n", "resources.cpus", ("not a number",)),
    ("memory-bad", "resources: {memory: lots}\nrun: x\n", "resources.memory", ("64GB",)),
    ("disk-zero", "resources: {disk_size: 0}\nrun: x\n", "resources.disk_size", ("more than 0",)),
    ("disk-plus", "resources: {disk_size: 100+}\nrun: x\n", "resources.disk_size", ("one size",)),
    (
        "disk-tiny",
        "resources: {disk_size: 100MB}\nrun: x\n",
        "resources.disk_size",
        ("less than 1 GB",),
    ),
    (
        "use-spot-text",
        "resources: {use_spot: 'maybe'}\nrun: x\n",
        "resources.use_spot",
        ("true or false",),
    ),
    (
        "cloud-unknown",
        "resources: {cloud: amazon}\nrun: x\n",
        "resources.cloud",
        ("'amazon' is not a cloud skyd or SkyPilot knows", "known clouds: "),
    ),
    (
        "infra-k8s",
        "resources: {infra: gpc/us-east1}\nrun: x\n",
        "resources.infra",
        ("resources.infra: 'gpc/us-east1': 'gpc' is not a cloud", "did you mean 'gcp'"),
    ),
    (
        "infra-too-deep",
        "resources: {infra: aws/a/b/c}\nrun: x\n",
        "resources.infra",
        ("CLOUD/REGION",),
    ),
    (
        "infra-empty-part",
        "resources: {infra: aws//z}\nrun: x\n",
        "resources.infra",
        ("not an infra",),
    ),
    (
        "infra-and-cloud",
        "resources: {infra: aws/us-east-1, region: us-west-2}\nrun: x\n",
        "resources.infra",
        ("infra and region are both set",),
    ),
    (
        "accelerator-fraction",
        "resources: {accelerators: 'T4:0.5'}\nrun: x\n",
        "resources.accelerators",
        ("fraction of an accelerator", "T4:1"),
    ),
    (
        "accelerator-zero",
        "resources: {accelerators: 'A100:0'}\nrun: x\n",
        "resources.accelerators",
        ("no accelerator",),
    ),
    (
        "accelerator-count-text",
        "resources: {accelerators: 'A100:eight'}\nrun: x\n",
        "resources.accelerators",
        ("'eight' of A100 is not a number",),
    ),
    (
        "accelerator-dict-fraction",
        "resources: {accelerators: {T4: 0.5}}\nrun: x\n",
        "resources.accelerators",
        ("fraction",),
    ),
    (
        "accelerator-dict-double-count",
        "resources: {accelerators: {'A100:8': 8}}\nrun: x\n",
        "resources.accelerators",
        ("count both in its name and as its value",),
    ),
    (
        "accelerator-number",
        "resources: {accelerators: 8}\nrun: x\n",
        "resources.accelerators",
        ("8 is not an accelerator", "A100:8"),
    ),
    (
        "accelerator-empty-list",
        "resources: {accelerators: []}\nrun: x\n",
        "resources.accelerators",
        ("empty",),
    ),
    (
        "accelerator-bad-name",
        "resources: {accelerators: 'A 100'}\nrun: x\n",
        "resources.accelerators",
        ("'A 100' is not an accelerator",),
    ),
    (
        "price-zero",
        "resources: {max_hourly_cost: 0}\nrun: x\n",
        "resources.max_hourly_cost",
        ("more than 0",),
    ),
    (
        "price-text",
        "resources: {max_hourly_cost: cheap}\nrun: x\n",
        "resources.max_hourly_cost",
        ("'cheap' is not a number", "dollars per hour"),
    ),
    (
        "countries-bad",
        "resources: {countries: [USA]}\nrun: x\n",
        "resources.countries",
        ("'USA' is not a country code",),
    ),
    ("autostop-bad", "resources: {autostop: never}\nrun: x\n", "resources.autostop", ("'never'",)),
    (
        "autostop-fraction-minutes",
        "resources: {autostop: 90s}\nrun: x\n",
        "resources.autostop",
        ("whole number of minutes",),
    ),
    ("labels-list", "resources: {labels: [a]}\nrun: x\n", "resources.labels", ("not a mapping",)),
    (
        "instance-type-list",
        "resources: {instance_type: [a]}\nrun: x\n",
        "resources.instance_type",
        ("not an instance type",),
    ),
    # -- alternatives
    (
        "any-of-and-ordered",
        "resources:\n  any_of: [{cloud: aws}]\n  ordered: [{cloud: gcp}]\nrun: x\n",
        "resources.ordered",
        ("any_of and ordered cannot be used together",),
    ),
    ("any-of-empty", "resources: {any_of: []}\nrun: x\n", "resources.any_of", ("list is empty",)),
    (
        "any-of-null",
        "resources:\n  any_of:\nrun: x\n",
        "resources.any_of",
        ("list of alternatives",),
    ),
    (
        "any-of-mapping",
        "resources: {any_of: {cloud: aws}}\nrun: x\n",
        "resources.any_of",
        ("a mapping",),
    ),
    (
        "any-of-item-scalar",
        "resources: {ordered: [aws]}\nrun: x\n",
        "resources.ordered[0]",
        ("'aws' is not a resources mapping",),
    ),
    (
        "nested-any-of",
        "resources:\n  any_of:\n    - any_of: [{cloud: aws}]\nrun: x\n",
        "resources.any_of[0].any_of",
        ("cannot be nested",),
    ),
    (
        "recovery-in-alternative",
        "resources:\n  any_of:\n    - job_recovery: FAILOVER\nrun: x\n",
        "resources.any_of[0].job_recovery",
        ("once per task",),
    ),
    (
        "bad-value-in-alternative",
        "resources:\n  ordered:\n    - cloud: aws\n    - accelerators: 'H100:0.25'\nrun: x\n",
        "resources.ordered[1].accelerators",
        ("task.yaml:4:21", "fraction"),
    ),
]


@pytest.mark.parametrize(
    ("text", "field", "fragments"),
    [(t, f, m) for _, t, f, m in INVALID],
    ids=[i for i, *_ in INVALID],
)
def test_invalid_task_is_refused_with_field_and_fix(
    text: str, field: str | None, fragments: tuple[str, ...]
) -> None:
    with pytest.raises(SpecError) as caught:
        parse_task(text)
    error = caught.value
    assert error.field == field
    assert error.code == "invalid_spec"
    for fragment in fragments:
        assert fragment in error.message
    if field is not None:
        assert f"{field}:" in error.message


def test_source_name_is_used_in_locations() -> None:
    with pytest.raises(SpecError, match=r"^train\.yaml:3:3: resources\.cpu: unknown field"):
        parse_task("run: x\nresources:\n  cpu: 4\n", source="train.yaml")


def test_missing_workdir_is_named_with_resolved_path(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        parse_task("workdir: ./code\nrun: x\n", base_dir=tmp_path)
    assert caught.value.field == "workdir"
    assert "'./code' does not exist" in caught.value.message
    assert str(tmp_path / "code") in caught.value.message


def test_workdir_must_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SpecError, match="is not a directory"):
        parse_task("workdir: file.txt\nrun: x\n", base_dir=tmp_path)


def test_missing_file_mount_source_is_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        parse_task("file_mounts:\n  /data: ./missing\nrun: x\n", base_dir=tmp_path)
    assert caught.value.field == "file_mounts./data"
    assert "does not exist" in caught.value.message


def test_oversized_file_is_refused() -> None:
    with pytest.raises(SpecError, match="larger than"):
        parse_task("run: x\n# " + "x" * 1_100_000)


def test_alias_bomb_does_not_hang_and_still_validates() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 20)]
    text = "envs:\n" + "\n".join("  " + line for line in lines) + "\nrun: x\n"
    with pytest.raises(SpecError) as caught:
        parse_task(text)
    assert caught.value.field == "envs.a0"


def test_command_task_without_command_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        command_task([], base_dir=tmp_path)
    assert caught.value.field == "run"
    assert "skyctl submit -- echo hello" in caught.value.message


def test_command_task_name_is_checked(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        command_task(["echo"], base_dir=tmp_path, name="a\nb")
    assert caught.value.field == "name"


def test_corrupt_stored_json_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match="stored task spec is invalid"):
        TaskSpec.from_json('{"run": "x", "priority": 1000}')
    with pytest.raises(SpecError, match="stored task spec is invalid"):
        TaskSpec.from_json('{"run": "x", "surprise": 1}')
    with pytest.raises(SpecError):
        TaskSpec.from_json("not json")


def test_unusable_local_path_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        parse_task('workdir: "code\\0dir"\nrun: x\n', base_dir=tmp_path)
    assert caught.value.field == "workdir"
    assert "NUL byte" in caught.value.message
