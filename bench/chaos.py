"""kill -9 chaos with a churning spot market: `skyd run` is killed again and again while local
and spot jobs run and every sim zone loses its spot capacity in turn, so preemptions and
recoveries straddle restarts. Afterwards the market settles and the daemon finishes the work.

Counted at the end: jobs lost (acknowledged, then gone), jobs stuck non-terminal, concurrent
duplicate attempts (each attempt takes the job's flock; a second live one records itself),
leaked processes and instances, and instances whose ledger seconds differ from their lives.

    python -m bench.chaos --kills 200 --json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import random
import sqlite3
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from skyctl.client import DaemonClient
from skyd.testing.daemon import DaemonProcess, wait_until

ZONES = ("sim-a", "sim-b", "sim-c")
PERIOD_ROWS = 9  # each zone loses spot capacity for DOWN_ROWS of every PERIOD_ROWS (1 s rows)
DOWN_ROWS = 3
TERMINAL = {"SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED"}

# Each attempt holds the job's lock while it runs: a second attempt alive at the same time
# cannot take it and says so. Work resumes from the checkpoint, so preemptions cost little.
ATTEMPT = """\
exec 9>"$SKYD_CHECKPOINT_DIR/attempt.lock"
if ! flock -n 9; then echo "$SKYD_JOB_ID $SKYD_ATTEMPT" >> "$DUPLICATES"; exit 3; fi
step=0
if [ -f "$SKYD_CHECKPOINT_DIR/step" ]; then step=$(cat "$SKYD_CHECKPOINT_DIR/step"); fi
while [ "$step" -lt "$STEPS" ]; do
  step=$((step + 1)); sleep 0.25
  ckpt="$SKYD_CHECKPOINT_DIR/step"
  echo "$step" > "$ckpt.tmp" && mv "$ckpt.tmp" "$ckpt"
done
echo "finished at step $step"
"""


def task(name: str, *, spot: bool, steps: int, duplicates: Path) -> str:
    resources = "resources:\n  accelerators: V100:1\n  use_spot: true\n" if spot else ""
    recovery = "job_recovery:\n  strategy: FAILOVER\n" if spot else ""
    body = "\n".join("  " + line for line in ATTEMPT.splitlines())
    return (
        f"name: {name}\n{resources}{recovery}"
        f"envs:\n  STEPS: {steps}\n  DUPLICATES: {duplicates}\n"
        f"run: |\n{body}\n"
    )


def write_trace(root: Path, churn_rows: int) -> Path:
    """Zones lose capacity in turn (never two at once) for `churn_rows` rows, then all hold."""
    root.mkdir(parents=True)
    start = dt.datetime(2026, 1, 1)
    rows = churn_rows + 1
    stamps = [(start + dt.timedelta(seconds=i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(rows)]
    for k, zone in enumerate(ZONES):
        phase = k * PERIOD_ROWS // len(ZONES)
        values = [
            0 if i < churn_rows and (i + phase) % PERIOD_ROWS < DOWN_ROWS else 1
            for i in range(rows)
        ]
        lines = ["date,availability", *(f"{s},{v}" for s, v in zip(stamps, values, strict=True))]
        (root / f"{zone}.csv").write_text("\n".join(lines) + "\n")
    meta = {
        "name": "churn",
        "cloud": "aws",
        "instance_type": "p3.2xlarge",
        "accelerator": "V100:1",
        "on_demand_price": 3.0,
        "zones": {
            zone: {"region": "r1", "availability_file": f"{zone}.csv", "spot_price": 0.5 + 0.1 * k}
            for k, zone in enumerate(ZONES)
        },
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@dataclass
class Report:
    kills: int = 0
    submitted: int = 0
    lost: list[int] = field(default_factory=list)
    stuck: list[int] = field(default_factory=list)
    not_succeeded: dict[int, str] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    leaked_processes: list[int] = field(default_factory=list)
    leaked_instances: list[str] = field(default_factory=list)
    ledger_mismatches: dict[str, list[int]] = field(default_factory=dict)
    preemptions: int = 0
    preemptions_across_restart: int = 0
    instances: int = 0
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return not (
            self.lost
            or self.stuck
            or self.not_succeeded
            or self.duplicates
            or self.leaked_processes
            or self.leaked_instances
            or self.ledger_mismatches
        )


def _config(daemon: DaemonProcess, traces: Path) -> None:
    daemon.config.write_text(
        "scheduler_tick_seconds = 0.1\nshutdown_budget_seconds = 5.0\n"
        "[local]\ngpus = 0\ncancel_grace_seconds = 1.0\n"
        f'[sim]\nenabled = true\ntraces = "{traces}"\nspeedup = 1.0\n'
        "provisioning_delay_seconds = 0.3\n"
    )


def _submit(
    daemon: DaemonProcess, rng: random.Random, n: int, duplicates: Path, acked: list[int]
) -> None:
    """Submit `n` jobs (about two in three on spot); an answered submit is acknowledged."""
    try:
        with DaemonClient(str(daemon.socket_path)) as client:
            for _ in range(n):
                spot = rng.random() < 0.65
                text = task(
                    f"chaos-{len(acked)}",
                    spot=spot,
                    steps=rng.randint(8, 24) if spot else rng.randint(2, 6),
                    duplicates=duplicates,
                )
                acked.append(int(client.submit_task(text, str(daemon.root), None)["id"]))
    except (OSError, RuntimeError, ValueError):
        pass  # the daemon died under the submit (a cut answer): not acknowledged, not counted


def run_chaos(root: Path, kills: int, *, seed: int = 12, settle_seconds: float = 120.0) -> Report:
    rng = random.Random(seed)
    started = time.monotonic()
    # the market churns for about as long as the kills last (~1.3 s per kill), then settles
    traces = write_trace(root / "trace", churn_rows=int(kills * 1.3) + 10)
    duplicates = root / "duplicates.log"
    duplicates.touch()
    daemon = DaemonProcess(root)
    _config(daemon, traces)
    report = Report()
    acked: list[int] = []
    starts: list[float] = []  # wall-clock time of each daemon start
    try:
        starts.append(time.time())
        daemon.start()
        _submit(daemon, rng, 12, duplicates, acked)
        for _ in range(kills):
            time.sleep(rng.uniform(0.1, 0.8))  # up for a moment, then killed
            if rng.random() < 0.5:
                _submit(daemon, rng, 1, duplicates, acked)
            daemon.kill9()
            report.kills += 1
            starts.append(time.time())
            daemon.start()
        # what is not done once the market settled is counted as stuck
        with DaemonClient(str(daemon.socket_path)) as client, contextlib.suppress(TimeoutError):
            wait_until(
                lambda: all(client.get_job(j)["state"] in TERMINAL for j in acked),
                timeout=settle_seconds,
                interval=0.25,
            )
        assert daemon.terminate() == 0
        _audit(daemon, acked, duplicates, report, starts)
    finally:
        daemon.close()
    report.submitted = len(acked)
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _audit(
    daemon: DaemonProcess, acked: list[int], duplicates: Path, report: Report, starts: list[float]
) -> None:
    db = sqlite3.connect(daemon.state_dir / "skyd.db")
    db.row_factory = sqlite3.Row
    try:
        states = {r["id"]: r["state"] for r in db.execute("SELECT id, state FROM jobs")}
        report.lost = [j for j in acked if j not in states]
        report.stuck = [j for j in acked if states.get(j) not in TERMINAL and j in states]
        report.not_succeeded = {
            j: s for j, s in states.items() if s in TERMINAL and s != "SUCCEEDED"
        }
        report.duplicates = duplicates.read_text().split("\n")[:-1]
        instances = db.execute("SELECT * FROM instances").fetchall()
        report.instances = len(instances)
        report.leaked_instances = sorted(
            {r["instance_id"] for r in instances if r["state"] not in ("TERMINATED", "PREEMPTED")}
            | {p.stem for p in (daemon.state_dir / "sim-instances").glob("sim-*.json")}
        )
        for inst in instances:
            if inst["ended_at"] is None or inst["hourly_price_micros"] == 0:
                continue
            life = round(inst["ended_at"] * 1000) - round(inst["launched_at"] * 1000)
            key = (inst["provider"], inst["instance_id"])
            posted = db.execute(
                "SELECT COALESCE(SUM(end_ms - start_ms), 0) FROM ledger"
                " WHERE provider = ? AND instance_id = ?",
                key,
            ).fetchone()[0]
            # a stretch still open (posted on a later pass) is charged too
            still_open = db.execute(
                "SELECT COALESCE(SUM(p.accrued_ms - w.open_start_ms), 0)"
                " FROM accrual_watermarks AS w JOIN accrual_progress AS p ON p.id = w.id"
                " WHERE w.provider = ? AND w.instance_id = ? AND w.settled = 0"
                " AND w.open_start_ms IS NOT NULL",
                key,
            ).fetchone()[0]
            charged = posted + still_open
            if charged != life:
                report.ledger_mismatches[inst["instance_id"]] = [life, int(charged)]
        launched: dict[int, float] = {}
        for event in db.execute("SELECT job_id, kind, state, at FROM events ORDER BY seq"):
            if event["state"] == "PROVISIONING":
                launched[event["job_id"]] = event["at"]
            elif event["kind"] == "preempted":
                report.preemptions += 1
                since = launched.get(event["job_id"], event["at"])
                # a daemon started between the launch and the loss: recovered across a restart
                if any(since < s < event["at"] for s in starts):
                    report.preemptions_across_restart += 1
    finally:
        db.close()
    report.leaked_processes = processes_of(daemon.state_dir)


def processes_of(state_dir: Path) -> list[int]:
    """Live processes of this run's jobs: shims name their attempt directory, job processes
    carry their checkpoint directory in the environment (a pid check alone would count an
    unrelated process that reused a dead attempt's pid)."""
    mark = str(state_dir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            seen = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            zombie = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            continue
        if mark in seen and not zombie:
            found.append(int(entry.name))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="skyd-chaos-") as tmp:
        report = run_chaos(Path(tmp), args.kills, seed=args.seed)
    out = asdict(report) | {"clean": report.clean}
    print(json.dumps(out, indent=2) if args.json else out)
    return 0 if report.clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
