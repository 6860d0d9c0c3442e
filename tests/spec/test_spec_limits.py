"""What the kernel or the host cannot take is refused at submit, naming the field and the fix
(issue 12 point 5: these were accepted and then FAILED with "runner disappeared")."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.errors import SpecError
from skyd.spec import ParseOptions, command_task, parse_task
from skyd.spec.limits import MAX_STRING_BYTES, directory_size


def test_nul_in_a_command_argument_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="argument 2 contains a NUL byte") as caught:
        command_task(["echo", "a\x00b"], base_dir=tmp_path)
    assert caught.value.field == "command"


def test_five_megabyte_argument_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"argument 2 is 5,000,000 bytes.*put the data in a file"):
        command_task(["echo", "x" * 5_000_000], base_dir=tmp_path)


def test_hundred_thousand_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="100,000 arguments is too many"):
        command_task(["echo"] + ["a"] * 99_999, base_dir=tmp_path)


def test_many_arguments_adding_up_past_the_limit_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"add up to more than 1\.0 MiB"):
        command_task(["echo"] + ["y" * 100_000] * 11, base_dir=tmp_path)


def test_nul_in_base_dir_is_refused() -> None:
    with pytest.raises(SpecError, match="base_dir contains a NUL byte"):
        command_task(["echo"], base_dir=Path("/tmp/a\x00b"))
    with pytest.raises(SpecError, match="working directory contains a NUL byte"):
        parse_task("run: x\n", base_dir=Path("/tmp/a\x00b"))


def test_nul_in_an_env_value_is_refused_with_its_location() -> None:
    with pytest.raises(SpecError) as caught:
        parse_task('envs:\n  A: "x\\0y"\nrun: x\n')
    assert caught.value.field == "envs.A"
    assert caught.value.message.startswith("task.yaml:2:6: envs.A: A contains a NUL byte")


def test_an_env_value_larger_than_execve_takes_is_refused() -> None:
    text = f"envs:\n  BIG: {'z' * MAX_STRING_BYTES}\nrun: x\n"
    with pytest.raises(SpecError, match=r"envs\.BIG: BIG is 131,075 bytes"):
        parse_task(text)


def test_a_run_script_larger_than_execve_takes_is_refused() -> None:
    text = "run: |\n" + "  echo hello\n" * 12_000
    with pytest.raises(SpecError, match=r"run: the run script is 132,000 bytes"):
        parse_task(text)


def test_absurd_num_nodes_is_refused_clearly() -> None:
    with pytest.raises(SpecError) as caught:
        parse_task("num_nodes: 1000000000\nrun: x\n")
    assert caught.value.field == "num_nodes"
    assert "1000000000 is out of range; it must be between 1 and 512" in caught.value.message


@pytest.mark.parametrize("dest", ["../../../../x", "a/../../x", "~/../x", "..", "~/a/../../b"])
def test_relative_mount_destination_cannot_leave_the_job_directory(
    tmp_path: Path, dest: str
) -> None:
    (tmp_path / "src").write_text("data")
    with pytest.raises(SpecError) as caught:
        parse_task(f"file_mounts:\n  '{dest}': src\nrun: x\n", base_dir=tmp_path)
    assert "leads outside the job's directory" in caught.value.message
    assert caught.value.field == f"file_mounts.{dest}"


def test_mount_destinations_are_stored_normalized(tmp_path: Path) -> None:
    (tmp_path / "src").write_text("data")
    spec = parse_task(
        "file_mounts:\n  ./a/./b: src\n  /x/../../y: src\n  ~/c/../d: src\nrun: x\n",
        base_dir=tmp_path,
    )
    assert sorted(spec.file_mounts) == ["/y", "a/b", "~/d"]


def test_file_mounts_use_the_tasks_envs(tmp_path: Path) -> None:
    (tmp_path / "tmp-workdir").mkdir()
    spec = parse_task(
        "envs: {SIZE: 13b, DIR: tmp-workdir}\n"
        "file_mounts:\n  /checkpoint/${SIZE}: ./$DIR\nrun: x\n",
        base_dir=tmp_path,
    )
    assert spec.file_mounts == {"/checkpoint/13b": str(tmp_path / "tmp-workdir")}


def test_workdir_over_the_limit_names_its_size_and_skyignore(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "data.bin").write_bytes(b"x" * 5000)
    (work / "train.py").write_text("print(1)\n")
    options = ParseOptions(base_dir=tmp_path, max_workdir_bytes=4096)
    with pytest.raises(SpecError) as caught:
        parse_task("workdir: work\nrun: x\n", options=options)
    message = caught.value.message
    assert caught.value.field == "workdir"
    assert "holds more than 4.0 KiB" in message and ".skyignore" in message
    # the fix the message names works
    (work / ".skyignore").write_text("*.bin\n")
    assert parse_task("workdir: work\nrun: x\n", options=options).workdir == str(work)


def test_directory_size_stops_counting_past_the_limit(tmp_path: Path) -> None:
    for index in range(50):
        (tmp_path / f"f{index}").write_bytes(b"x" * 100)
    assert directory_size(tmp_path, stop_after=250) < 5000
    assert directory_size(tmp_path, stop_after=10**9) == 5000
