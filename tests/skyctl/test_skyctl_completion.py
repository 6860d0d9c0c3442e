"""`skyctl completion bash|zsh|fish`: generated from the parser, loaded and run in the real
shells, completing subcommands, nested verbs, flags and flag values."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT_DIR_PREFIX = "skyctl-completion-"


def _script(shell: str, tmp_path: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "skyctl", "completion", shell],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    path = tmp_path / f"skyctl.{shell}"
    path.write_text(proc.stdout)
    return path


def _bash_complete(script: Path, *words: str) -> list[str]:
    """What bash offers for `skyctl WORDS…` (the last word being completed), via COMP_WORDS."""
    quoted = " ".join(f"'{w}'" for w in ("skyctl", *words))
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words)}; COMPREPLY=()\n"
        "_skyctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
        "complete -p skyctl\n"
    )
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    *offers, registration = proc.stdout.splitlines()
    assert registration == "complete -o default -F _skyctl skyctl"
    return [offer for offer in offers if offer]


def test_bash_completes_commands_verbs_flags_and_values(tmp_path: Path) -> None:
    script = _script("bash", tmp_path)
    assert _bash_complete(script, "st") == ["stop", "start", "status", "storage"]
    assert _bash_complete(script, "show-") == ["show-gpus"]
    assert "completion" in _bash_complete(script, "")
    assert _bash_complete(script, "--socket", "/tmp/s", "jobs", "l") == ["launch", "logs"]
    assert set(_bash_complete(script, "queue", "--")) >= {"--all", "--user", "--state", "--json"}
    assert "--detach-run" in _bash_complete(script, "jobs", "launch", "--")
    assert "--amount" in _bash_complete(script, "credits", "add", "--")
    assert _bash_complete(script, "costs", "--by", "") == [
        "user",
        "project",
        "cloud",
        "pool",
        "job",
    ]
    assert _bash_complete(script, "completion", "") == ["-h", "--help", "bash", "zsh", "fish"]
    # a flag's free value (a name) is left to bash's default completion: nothing is offered
    assert _bash_complete(script, "submit", "--name", "") == []


def _need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        pytest.fail(f"{shell} is not installed: run .ci/setup.d/30-shells.sh")
    return path


def test_zsh_loads_the_script_and_completes_through_bashcompinit(tmp_path: Path) -> None:
    zsh = _need("zsh")
    script = _script("zsh", tmp_path)
    program = (
        "autoload -U compinit && compinit -u -d $TMPDIR/zcompdump\n"
        f"source {script}\n"
        "print -r -- ${_comps[skyctl]}\n"
        # bashcompinit runs the function in sh emulation, as here
        "t() { emulate -L sh; COMP_WORDS=(skyctl jobs ''); COMP_CWORD=2; _skyctl;"
        ' echo "${COMPREPLY[@]}"; }; t\n'
    )
    proc = subprocess.run(
        [zsh, "-f", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={"TMPDIR": str(tmp_path), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    registration, offers = proc.stdout.splitlines()[-2:]
    assert registration == "_bash_complete -o default -F _skyctl"
    assert offers.split() == ["-h", "--help", "launch", "queue", "cancel", "logs"]


def test_fish_completes_commands_and_flag_values(tmp_path: Path) -> None:
    fish = _need("fish")
    script = _script("fish", tmp_path)

    def complete(line: str) -> list[str]:
        proc = subprocess.run(
            [fish, "--no-config", "-c", f"source {script}; complete -C '{line}'"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
        )
        return [row.split("\t")[0] for row in proc.stdout.splitlines()]

    assert complete("skyctl sho") == ["show", "show-gpus"]
    assert complete("skyctl costs --by ") == ["cloud", "job", "pool", "project", "user"]
    assert {"--detach-run", "--follow"} <= set(complete("skyctl jobs launch --"))
