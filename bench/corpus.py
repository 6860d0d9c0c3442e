"""How many real task files skyd takes: `skyctl optimize --json` over a directory of them.

Run from the repository root:

    python -m bench.corpus --json                                  # tests/fixtures/skypilot_corpus
    python -m bench.corpus --dir PATH --json                       # any directory of *.yaml

A private daemon with the default configuration is started; every file is given to the real
`skyctl optimize FILE --json` with the corpus directory as the working directory (as a user
would from the repository that holds it). A file is *accepted* when skyctl answers with a plan
(exit 0, or 1 for a valid task nothing can place), and *placed* (exit 0) when the answer names
a placement (on an enabled provider, or on a cloud whose
provider is not enabled: `if_all_providers_enabled`); a pipeline is placed when every stage is.
The first line of every refusal is kept so the report says what is still missing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from skyd.config import Settings
from skyd.testing.daemon import DaemonThread

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "skypilot_corpus"


def _skyctl() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "skyctl")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "skyctl"]


def _placed(answer: object) -> bool:
    if not isinstance(answer, dict):
        return False
    stages = answer.get("stages")
    if isinstance(stages, list):
        return bool(stages) and all(_placed(stage) for stage in stages)
    return bool(answer.get("chosen") or answer.get("if_all_providers_enabled"))


def judge(path: Path, socket_path: str, env: dict[str, str]) -> dict[str, Any]:
    """One file through `skyctl optimize --json`: accepted, placed, and why not."""
    result = subprocess.run(
        [*_skyctl(), "--socket", socket_path, "optimize", path.name, "--json"],
        cwd=path.parent,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    try:
        answer = json.loads(result.stdout) if result.stdout.strip() else None
    except json.JSONDecodeError:
        answer = None
    # exit 1 with an answer is a valid task that would not be placed; without one, refused
    accepted = isinstance(answer, dict)
    placed = result.returncode == 0 and _placed(answer)
    why = ""
    if not accepted:
        why = (result.stderr.strip().splitlines() or ["?"])[0]
    elif not placed and isinstance(answer, dict):
        why = str(answer.get("reason") or "not placed")
    return {
        "file": path.name,
        "exit_code": result.returncode,
        "accepted": accepted,
        "placed": placed,
        "why": why,
    }


def _reason_kind(why: str) -> str:
    """`file:3:5: resources.ports: not supported …` → `resources.ports`."""
    parts = [part.strip() for part in why.split(": ")]
    for part in parts:
        if part in ("skyctl", "error") or ".yaml" in part or ".yml" in part:
            continue
        if part and " " not in part and not part[0].isdigit():
            return part
        break
    return why[:60]


def run(corpus: Path) -> dict[str, Any]:
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".yaml", ".yml"))
    with tempfile.TemporaryDirectory(prefix="skyd-corpus-") as root:
        settings = Settings(state_dir=Path(root) / "state", socket_path=Path(root) / "skyd.sock")
        daemon = DaemonThread(settings).start()
        env = {**os.environ, "SKYD_SOCKET": str(settings.socket_path)}
        try:
            rows = [judge(path, str(settings.socket_path), env) for path in files]
        finally:
            daemon.stop()
    accepted = sum(row["accepted"] for row in rows)
    placed = sum(row["placed"] for row in rows)
    refusals = Counter(_reason_kind(row["why"]) for row in rows if not row["placed"])
    return {
        "corpus": str(corpus),
        "files": len(rows),
        "accepted": accepted,
        "placed": placed,
        "accepted_fraction": round(accepted / len(rows), 3) if rows else 0.0,
        "placed_fraction": round(placed / len(rows), 3) if rows else 0.0,
        "refusals": dict(refusals.most_common()),
        "per_file": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_CORPUS, help="directory of task files")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    report = run(args.dir)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for row in report["per_file"]:
            mark = "placed" if row["placed"] else ("accepted" if row["accepted"] else "refused")
            print(f"{mark:9} {row['file']}  {row['why']}")
        print(
            f"{report['placed']}/{report['files']} placed ({report['placed_fraction']:.0%}), "
            f"{report['accepted']}/{report['files']} accepted"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
