"""Slurm output parsing, state mapping, error mapping and settings (pure, no cluster)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from skyd.clock import SystemClock, VirtualClock
from skyd.config import ConfigError, Settings
from skyd.daemon_providers import build_providers
from skyd.errors import AuthError, CapacityError, ProviderError, QuotaError, TransientError
from skyd.model import InstanceState
from skyd.providers.slurm import SlurmProvider, SlurmProviderConfig
from skyd.providers.slurm.parse import (
    decode_tags,
    encode_tags,
    instance_state,
    parse_gres,
    parse_sinfo,
    parse_squeue,
)
from skyd.providers.slurm.provider import shapes_of
from skyd.providers.slurm.script import batch_script, sbatch_error
from skyd.providers.ssh.connection import CommandResult
from skyd.spec.values import parse_infra


@pytest.mark.parametrize(
    ("text", "gpus"),
    [
        ("gpu:fake:2", {"fake": 2}),
        ("gpu:2", {"": 2}),
        ("gpu:a100:4(S:0-1),gpu:v100:2(S:0,1)", {"a100": 4, "v100": 2}),
        ("(null)", {}),
        ("craynetwork:4,gpu:h100:8", {"h100": 8}),
    ],
)
def test_gres(text: str, gpus: dict[str, int]) -> None:
    assert parse_gres(text) == gpus


def test_sinfo_nodes_group_into_shapes_of_usable_nodes() -> None:
    text = (
        "n1|gpu|64|515000|gpu:a100:4|idle|up|\n"
        "n2|gpu|64|515000|gpu:a100:4|mixed|up|\n"
        "n3|gpu|64|515000|gpu:a100:4|drained|up|\n"
        "n4|cpu|32|128000|(null)|allocated|up|\n"
        "n5|old|8|1000|(null)|idle|down|\n"
        "garbage line\n"
    )
    nodes = parse_sinfo(text)
    assert [n.name for n in nodes] == ["n1", "n2", "n3", "n4", "n5"]
    shapes = shapes_of(nodes, ())
    assert [(s.partition, s.gpu_type, s.gpus, s.count) for s in shapes] == [
        ("cpu", "", 0, 1),
        ("gpu", "a100", 4, 2),
    ]
    assert [s.partition for s in shapes_of(nodes, ("gpu",))] == ["gpu"]


def test_squeue_jobs_and_their_states() -> None:
    text = (
        "12|skyd-3-1|RUNNING|0|2|lab|n[1-2]|None|skyd-daemon=d1,skyd-job=3,skyd-managed=1|\n"
        "13|skyd-4-1|PENDING|1|1|lab||BeginTime|skyd-job=4|\n"
        "14|other|COMPLETED|0|1|lab|n1|None|(null)|\n"
    )
    jobs = parse_squeue(text)
    assert [j.job_id for j in jobs] == ["12", "13", "14"]
    assert jobs[0].tags == {"skyd-daemon": "d1", "skyd-job": "3", "skyd-managed": "1"}
    assert jobs[2].tags == {}
    assert [instance_state(j) for j in jobs] == [
        InstanceState.RUNNING,
        InstanceState.PREEMPTED,  # requeued once: the attempt is lost, skyd recovers it
        InstanceState.TERMINATED,
    ]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("PREEMPTED", InstanceState.PREEMPTED),
        ("NODE_FAIL", InstanceState.PREEMPTED),
        ("BOOT_FAIL", InstanceState.PREEMPTED),
        ("COMPLETING", InstanceState.RUNNING),
        ("SUSPENDED", InstanceState.STOPPED),
        ("CONFIGURING", InstanceState.PENDING),
        ("TIMEOUT", InstanceState.TERMINATED),
        ("OUT_OF_MEMORY", InstanceState.TERMINATED),
    ],
)
def test_state_mapping(state: str, expected: InstanceState) -> None:
    [job] = parse_squeue(f"1|x|{state}|0|1|p|n|r||\n")
    assert instance_state(job) == expected


def test_tags_round_trip_and_unsafe_values_are_refused() -> None:
    tags = {"skyd-job": "7", "skyd-daemon": "skyd-abc"}
    assert decode_tags(encode_tags(tags)) == tags
    with pytest.raises(ValueError, match="cannot be written"):
        encode_tags({"skyd-cluster": "a,b"})


@pytest.mark.parametrize(
    ("stderr", "error", "scope"),
    [
        (
            "sbatch: error: Batch job submission failed: Requested node configuration is not "
            "available",
            CapacityError,
            "slurm/hpc/gpu",
        ),
        (
            "sbatch: error: Batch job submission failed: Invalid partition name specified",
            AuthError,
            "slurm/hpc/gpu",
        ),
        (
            "sbatch: error: QOSMaxSubmitJobPerUserLimit\nsbatch: error: Batch job submission "
            "failed: Job violates accounting/QOS policy",
            QuotaError,
            "slurm/hpc",
        ),
        (
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller",
            TransientError,
            "slurm/hpc/gpu",
        ),
        ("sbatch: error: something new", ProviderError, "slurm/hpc/gpu"),
    ],
)
def test_sbatch_refusals_keep_slurms_words(
    stderr: str, error: type[ProviderError], scope: str
) -> None:
    mapped = sbatch_error(stderr, cluster="hpc", partition="gpu")
    assert type(mapped) is error
    assert mapped.scope == scope
    assert stderr.split("\n")[-1].split(": ")[-1] in mapped.message


def test_batch_script_asks_for_the_gang_gres_and_time() -> None:
    script = batch_script(
        job_name="skyd-5-1",
        comment="skyd-job=5",
        partition="gpu",
        nodes=4,
        cpus_per_node=64,
        gpu_type="a100",
        gpus_per_node=8,
        time_limit_s=3601,
        run_dir="/home/skyd/.skyd/slurm/d/skyd-5-1",
        python="python3",
    )
    for line in (
        "#SBATCH --job-name=skyd-5-1",
        "#SBATCH --comment=skyd-job=5",
        "#SBATCH --partition=gpu",
        "#SBATCH --nodes=4",
        "#SBATCH --gres=gpu:a100:8",
        "#SBATCH --time=61",
        "#SBATCH --output=/home/skyd/.skyd/slurm/d/skyd-5-1/slurm-%j.out",
    ):
        assert line in script.splitlines()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"clusters": [{"name": "HPC"}]}, "name must be lowercase"),
        ({"clusters": [{"name": "hpc", "bogus": 1}]}, "unknown setting(s) bogus"),
        ({"clusters": [{"name": "hpc", "hourly_price_micros": -1}]}, "must be whole micro"),
        ({"clusters": [{"name": "hpc", "login": {"host": "x"}}]}, "login.user is required"),
        ({"clusters": [{"name": "a"}, {"name": "a"}]}, "duplicate cluster name(s) a"),
        ({"clusters": [{"name": "hpc", "partitions": "gpu"}]}, "must be a list"),
        ({"command_timeout_s": 0}, "must be > 0"),
        ({"nope": 1}, "slurm: unknown setting(s) nope"),
    ],
)
def test_bad_settings_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        SlurmProviderConfig.from_mapping(raw)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("infra", "where"),
    [
        ("slurm", ("slurm", None, None)),
        ("slurm/hpc/gpu", ("slurm", "hpc", "gpu")),
        ("k8s", ("kubernetes", None, None)),
        ("k8s/lab-cluster", ("kubernetes", "lab-cluster", None)),
        ("kubernetes/*", ("kubernetes", None, None)),
    ],
)
def test_infra_names_the_labs_clusters(infra: str, where: tuple[str | None, ...]) -> None:
    assert parse_infra(infra) == where


def test_daemon_builds_the_slurm_provider_from_its_table(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    settings.local.enabled = False
    settings.slurm = {"clusters": [{"name": "hpc", "partitions": ["gpu"]}]}
    providers = build_providers(settings, SystemClock())
    assert isinstance(providers["slurm"], SlurmProvider)
    settings.slurm = {"clusters": [{"name": "hpc", "work_dir": "$HOME/x"}]}
    with pytest.raises(ConfigError, match="work_dir must be a plain path"):
        build_providers(settings, SystemClock())


class CountingShell:
    """A login node that answers squeue with one running job and counts the calls."""

    where = "a test double"

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def run(self, argv: Sequence[str], *, timeout_s: float) -> CommandResult:
        self.calls.append(argv[0])
        if argv[0] == "squeue":
            return CommandResult(0, "7|skyd-1-1|RUNNING|0|1|lab|n1|None|skyd-managed=1|\n", "")
        return CommandResult(0, "", "")

    async def write_text(self, path: str, text: str, *, timeout_s: float) -> None:
        return None

    async def read_from(self, path: str, offset: int, *, timeout_s: float) -> bytes:
        return b""

    async def home(self, *, timeout_s: float) -> str:
        return "/home/skyd"


async def test_one_squeue_serves_every_look_for_a_while() -> None:
    shell = CountingShell()
    clock = VirtualClock(start=100.0)
    config = SlurmProviderConfig.from_mapping({"clusters": [{"name": "hpc"}], "squeue_cache_s": 2})
    provider = SlurmProvider(config, clock, shells={"hpc": shell})
    ids = ["slurm.hpc.7.0"]
    for _ in range(3):
        assert await provider.describe(ids) == {ids[0]: InstanceState.RUNNING}
    assert shell.calls == ["squeue"]
    clock.set(102.5)
    await provider.describe(ids)
    assert shell.calls == ["squeue", "squeue"]
    await provider.terminate(ids)  # a cancel asks afresh next time
    await provider.describe(ids)
    assert shell.calls == ["squeue", "squeue", "scancel", "squeue"]
    await provider.aclose()
