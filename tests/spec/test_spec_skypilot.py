"""SkyPilot task files as SkyPilot reads them: every problem at once, did-you-mean against the
catalog, the fields skyd now carries (ports, tiers, docker images, secrets), pipelines."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.errors import SpecError
from skyd.spec import Overrides, ParseOptions, Vocabulary, parse_file, parse_task
from skyd.spec.resources import HOST_PROCESS_CLOUDS
from skyd.spec.task import REDACTED


class _Offer:
    def __init__(self, cloud: str, region: str, zone: str, itype: str, acc: str) -> None:
        self.cloud, self.region, self.zone = cloud, region, zone
        self.instance_type, self.accelerator_name = itype, acc


VOCABULARY = Vocabulary.from_offers(
    [
        _Offer("aws", "us-east-1", "us-east-1a", "p4d.24xlarge", "A100"),
        _Offer("aws", "us-west-2", "us-west-2b", "p5.48xlarge", "H100"),
        _Offer("gcp", "us-central1", "us-central1-a", "a2-ultragpu-1g", "A100-80GB"),
    ]
)
WITH_CATALOG = ParseOptions(vocabulary=VOCABULARY)


def test_every_problem_in_a_file_is_reported_at_once_with_the_real_file_name() -> None:
    text = (
        "name: t\n"
        "num_nodes: 0\n"
        "resources:\n"
        "  accelerator: A100\n"
        "  cpus: lots\n"
        "  use_spot: maybe\n"
        "envs:\n"
        "  1BAD: x\n"
        "run: echo\n"
        "setpu: x\n"
    )
    with pytest.raises(SpecError) as caught:
        parse_task(text, source="examples/train.yaml")
    lines = caught.value.message.splitlines()
    assert len(lines) == 6, lines
    assert all(line.startswith("examples/train.yaml:") for line in lines)
    assert {detail.field for detail in caught.value.details} == {
        "setpu",
        "num_nodes",
        "resources.accelerator",
        "resources.cpus",
        "resources.use_spot",
        "envs.1BAD",
    }
    assert "examples/train.yaml:10:1: setpu: unknown field; did you mean 'setup'?" in lines


def test_problems_in_several_pipeline_stages_are_all_reported() -> None:
    text = "name: p\n---\nrun: a\nnum_nodes: -1\n---\nrun: b\nresources: {cpus: x}\n"
    with pytest.raises(SpecError) as caught:
        parse_file(text, source="pipe.yaml")
    assert [d.field for d in caught.value.details] == ["num_nodes", "resources.cpus"]
    assert "pipe.yaml:4:12: num_nodes" in caught.value.message
    assert "pipe.yaml:7:19: resources.cpus" in caught.value.message


@pytest.mark.parametrize(
    ("resources", "field", "fragment"),
    [
        ("infra: aws/us-east-9", "resources.infra", "did you mean 'us-east-1'"),
        ("{cloud: aws, region: us-wset-2}", "resources.region", "did you mean 'us-west-2'"),
        ("{cloud: aws, zone: us-east-1x}", "resources.zone", "did you mean 'us-east-1a'"),
        ("{cloud: awz}", "resources.cloud", "did you mean 'aws'"),
        ("{instance_type: p4d.24xlarg}", "resources.instance_type", "did you mean 'p4d.24xlarge'"),
        ("{accelerators: A1000}", "resources.accelerators", "did you mean 'A100'"),
        ("{accelerators: H10:8}", "resources.accelerators", "did you mean 'H100'"),
    ],
)
def test_unknown_names_get_did_you_mean_with_their_location(
    resources: str, field: str, fragment: str
) -> None:
    text = (
        f"resources: {resources}\nrun: x\n"
        if resources.startswith("{")
        else (f"resources:\n  {resources}\nrun: x\n")
    )
    with pytest.raises(SpecError) as caught:
        parse_task(text, source="t.yaml", options=WITH_CATALOG)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert caught.value.message.startswith("t.yaml:")


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("A100-40GB", "A100"), ("A100-80GB", "A100-80GB"), ("H100-SXM", "H100"), ("a100", "A100")],
)
def test_accelerator_aliases_map_to_catalog_names(written: str, canonical: str) -> None:
    spec = parse_task(f"resources: {{accelerators: '{written}:8'}}\nrun: x\n", options=WITH_CATALOG)
    assert spec.resources.accelerators == ((canonical, 8),)


def test_names_skypilot_knows_without_a_catalog_are_accepted() -> None:
    spec = parse_task(
        "resources: {infra: kubernetes, accelerators: MI210:1}\nrun: x\n", options=WITH_CATALOG
    )
    assert spec.resources.cloud == "kubernetes"
    assert spec.resources.accelerators == (("MI210", 1),)


def test_ports_and_tiers_are_carried() -> None:
    spec = parse_task(
        "resources:\n  ports: [8080, '10000-10010', 8080]\n  disk_tier: BEST\n"
        "  network_tier: best\nrun: x\n"
    )
    assert spec.resources.ports == ("8080", "10000-10010")
    assert (spec.resources.disk_tier, spec.resources.network_tier) == ("best", "best")
    assert spec.public_summary()["ports"] == ["8080", "10000-10010"]


def test_docker_image_is_carried_and_never_placed_on_a_bare_host() -> None:
    spec = parse_task("resources: {image_id: 'docker:pytorch/pytorch:2.3.0'}\nrun: x\n")
    assert spec.resources.docker_image == "pytorch/pytorch:2.3.0"
    (offer_filter,) = spec.offer_filters()
    assert offer_filter.blocked == HOST_PROCESS_CLOUDS
    plain = parse_task("resources: {image_id: ami-123}\nrun: x\n")
    assert plain.offer_filters()[0].blocked == frozenset()
    with pytest.raises(SpecError, match="does not name a container image"):
        parse_task("resources: {image_id: 'docker:'}\nrun: x\n")


def test_candidates_is_skypilots_older_any_of() -> None:
    spec = parse_task(
        "resources:\n  candidates:\n  - {accelerators: T4:4}\n  - {accelerators: V100:4}\nrun: x\n"
    )
    assert [alt.accelerators for alt in spec.alternatives] == [(("T4", 4),), (("V100", 4),)]


def test_service_is_refused_in_one_sentence() -> None:
    with pytest.raises(SpecError) as caught:
        parse_task("service: {replicas: 2}\nrun: x\n")
    message = caught.value.message
    assert message.count("\n") == 0 and "not supported yet" in message and "service:" in message


def test_a_cluster_task_may_have_no_run() -> None:
    spec = parse_task("setup: pip install x\n", options=ParseOptions(require_run=False))
    assert spec.run == "" and spec.setup == "pip install x"
    with pytest.raises(SpecError, match="run: required"):
        parse_task("setup: pip install x\n")


def test_secrets_are_envs_whose_values_are_never_shown() -> None:
    options = ParseOptions(overrides=Overrides(secrets={"HF_TOKEN": "hf_s3cret"}))
    spec = parse_task("secrets:\n  HF_TOKEN: null\nenvs: {MODEL: m}\nrun: x\n", options=options)
    assert spec.envs == {"MODEL": "m", "HF_TOKEN": "hf_s3cret"}
    assert spec.secret_names == ("HF_TOKEN",)
    assert spec.redacted_envs() == {"MODEL": "m", "HF_TOKEN": REDACTED}
    assert "hf_s3cret" not in str(spec.public_summary())


def test_env_without_value_needs_an_override_and_names_it() -> None:
    with pytest.raises(SpecError) as caught:
        parse_task("envs:\n  HF_TOKEN:\nrun: x\n", source="lora.yaml")
    assert caught.value.message == (
        "lora.yaml:2:12: envs.HF_TOKEN: has no value; pass it with --env HF_TOKEN=VALUE "
        "(or --env HF_TOKEN to use your environment's HF_TOKEN)"
    )
    spec = parse_task(
        "envs:\n  HF_TOKEN:\nrun: x\n",
        options=ParseOptions(overrides=Overrides(envs={"HF_TOKEN": "abc"})),
    )
    assert spec.envs == {"HF_TOKEN": "abc"}


def test_a_dry_run_turns_run_time_problems_into_warnings(tmp_path: Path) -> None:
    parsed = parse_file(
        "workdir: mistral\nenvs: {HF_TOKEN: null}\nrun: x\n",
        source="a.yaml",
        options=ParseOptions(base_dir=tmp_path, lenient=True),
    )
    assert len(parsed.warnings) == 2
    assert any("'mistral' does not exist" in warning for warning in parsed.warnings)


def test_overrides_replace_resources_everywhere_and_errors_name_the_option() -> None:
    text = (
        "resources:\n  accelerators: V100\n  any_of:\n    - {infra: aws, accelerators: T4}\n"
        "    - {infra: gcp}\nnum_nodes: 2\nrun: x\n"
    )
    spec = parse_task(
        text,
        options=ParseOptions(
            overrides=Overrides(gpus="A100:8", infra="aws/us-east-1", num_nodes=4, use_spot=True)
        ),
    )
    assert spec.num_nodes == 4
    for alternative in spec.alternatives:
        assert alternative.accelerators == (("A100", 8),)
        assert (alternative.cloud, alternative.region) == ("aws", "us-east-1")
        assert alternative.use_spot is True
    with pytest.raises(SpecError) as caught:
        parse_task("run: x\n", options=ParseOptions(overrides=Overrides(gpus="A100:half")))
    assert caught.value.message.startswith("--gpus: resources.accelerators:")


def test_pipeline_header_names_the_chain_and_each_document_is_a_stage() -> None:
    text = "name: chain\n---\nname: one\nrun: a\n---\nname: two\nrun: b\n"
    pipeline = parse_file(text).pipeline
    assert pipeline.name == "chain" and pipeline.is_pipeline
    assert [stage.name for stage in pipeline.stages] == ["one", "two"]
    without_header = parse_file("name: one\nrun: a\n---\nrun: b\n").pipeline
    assert without_header.name is None and len(without_header.stages) == 2


def test_a_git_workdir_is_carried() -> None:
    spec = parse_task("workdir:\n  url: https://github.com/x/y.git\n  ref: main\nrun: x\n")
    assert spec.workdir is None
    assert spec.workdir_git is not None
    assert (spec.workdir_git.url, spec.workdir_git.ref) == ("https://github.com/x/y.git", "main")
    with pytest.raises(SpecError, match="may not start with -"):
        parse_task("workdir: {url: 'https://h/x', ref: '--upload-pack=x'}\nrun: x\n")
