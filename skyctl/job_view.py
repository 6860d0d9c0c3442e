"""How jobs look to a human: the `queue` table and the `show` page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from skyctl.attempts import Attempt, job_attempts, total_run_seconds
from skyctl.render import (
    EMPTY,
    format_bytes,
    format_dollars,
    format_duration,
    format_money,
    format_relative,
    format_scalar,
    format_table,
    format_timestamp,
    key_values,
)

# skyctl's hot paths never import typing (~3 ms at startup); these names are for mypy only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

QUEUE_HEADERS = ("ID", "NAME", "USER", "STATE", "PLACEMENT", "SUBMITTED", "RUN TIME")
_ATTEMPT_HEADERS = ("#", "WHERE", "PLACED", "RAN", "ENDED BY")
LAST_ATTEMPT_MARK = "*"
_EVENT_HEADERS = ("TIME", "KIND", "STATE", "REASON")


def placement_summary(placement: Mapping[str, Any] | None) -> str:
    """`aws/us-east-1/us-east-1a p3.2xlarge spot`: where, what, and which market."""
    if not placement:
        return EMPTY
    where = "/".join(
        str(placement[key]) for key in ("cloud", "region", "zone") if placement.get(key)
    )
    parts = [where or "?"]
    if placement.get("instance_type"):
        parts.append(str(placement["instance_type"]))
    if placement.get("spot"):
        parts.append("spot")
    return " ".join(parts)


def accelerators(placement: Mapping[str, Any]) -> str:
    name = placement.get("accelerator_name")
    if not name:
        return ""
    return f"{name}:{placement.get('accelerator_count') or 1}"


def run_time(job: Mapping[str, Any], now: float) -> str:
    """Time since the (latest) start, until the end or now; `*` when earlier attempts ran too."""
    started = job.get("started_at")
    if started is None:
        return EMPTY
    ended = job.get("ended_at")
    text = format_duration((ended if ended is not None else now) - started)
    if (job.get("preemptions") or 0) + (job.get("restarts") or 0) > 0:
        text += LAST_ATTEMPT_MARK
    return text


def elapsed(job: Mapping[str, Any], now: float) -> str:
    """Run time once a job has started (until it ended, or now); before that, its age."""
    started = job.get("started_at")
    ended = job.get("ended_at")
    since = started if started is not None else job.get("created_at")
    if since is None:
        return EMPTY
    return format_duration((ended if ended is not None else now) - since)


def pipeline_text(job: Mapping[str, Any]) -> str | None:
    """`stage 2/3 of pipeline gpt2 (#12)` for a job that is a pipeline's stage."""
    pipeline = job.get("pipeline")
    if not isinstance(pipeline, Mapping):
        return None
    name = pipeline.get("name")
    which = f"{name} (#{pipeline.get('id')})" if name else f"#{pipeline.get('id')}"
    return f"stage {pipeline.get('stage')}/{pipeline.get('stages')} of pipeline {which}"


def state_text(job: Mapping[str, Any]) -> str:
    """The job's state, "RUNNING (cancelling)" while a cancel asked is under way."""
    state = str(job.get("state") or "?")
    return f"{state} (cancelling)" if job.get("cancel_requested") else state


def name_cell(job: Mapping[str, Any]) -> str:
    name = str(job.get("name") or EMPTY)
    pipeline = job.get("pipeline")
    if isinstance(pipeline, Mapping):
        label = pipeline.get("name") or f"#{pipeline.get('id')}"
        name += f" [{label} {pipeline.get('stage')}/{pipeline.get('stages')}]"
    return name


def queue_table(jobs: Sequence[Mapping[str, Any]], now: float, width: int | None = None) -> str:
    rows = [
        [
            str(job.get("id", "?")),
            name_cell(job),
            str(job.get("owner") or job.get("owner_uid") or EMPTY),
            state_text(job),
            placement_summary(job.get("placement")),
            format_relative(job.get("created_at"), now),
            run_time(job, now),
        ]
        for job in jobs
    ]
    # no fixed limits: long names and placements widen with the terminal, and give way first
    table = format_table(QUEUE_HEADERS, rows, width=width)
    if any(row[-1].endswith(LAST_ATTEMPT_MARK) for row in rows):
        table += (
            f"\n{LAST_ATTEMPT_MARK} the latest attempt only; "
            "`skyctl show ID` sums the run time of every attempt"
        )
    return table


def job_page(job: Mapping[str, Any], now: float, tz: dt.tzinfo | None = None) -> str:
    """Everything `skyctl show` says about one job: itself, its placement and why, its events."""
    sections = [
        f"Job {job.get('id', '?')}: {job.get('name') or EMPTY}",
        key_values(_job_facts(job, now, tz), indent="  "),
    ]
    placement = job.get("placement")
    sections.append("")
    if placement:
        facts = _placement_facts(placement, _move_facts(job))
        sections += ["Placement", key_values(facts, indent="  ")]
    else:
        sections.append("Placement: not placed yet")
    attempts = job_attempts(job, now)
    if len(attempts) > 1:
        sections += ["", "Attempts", _indent(_attempts_table(attempts, tz), "  ")]
    task = job.get("task")
    if isinstance(task, Mapping) and task:
        sections += ["", "Task", key_values(_task_facts(task), indent="  ")]
    events = job.get("events") or []
    sections.append("")
    if events:
        rows = [
            [
                format_timestamp(event.get("at"), tz),
                str(event.get("kind") or EMPTY),
                str(event.get("state") or EMPTY),
                str(event.get("reason") or ""),
            ]
            for event in events
        ]
        table = format_table(_EVENT_HEADERS, rows)
        sections += ["Events", _indent(table, "  ")]
    else:
        sections.append("Events: none")
    return "\n".join(sections)


def _task_facts(task: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The task's settings worth seeing; secret values never reach skyctl at all."""
    facts: list[tuple[str, str]] = []
    for key, label in (
        ("num_nodes", "nodes"),
        ("image", "image"),
        ("ports", "ports"),
        ("ports_open", "ports open"),
        ("endpoints", "endpoints"),
        ("disk_tier", "disk tier"),
        ("disk", "disk"),
        ("network_tier", "network tier"),
        ("network", "network"),
        ("workdir", "workdir"),
    ):
        value = task.get(key)
        if isinstance(value, list):
            value = ", ".join(str(item) for item in value)
        if value not in (None, ""):
            facts.append((label, str(value)))
    mounts = task.get("storage_mounts")
    if isinstance(mounts, Mapping):
        for dest, mount in mounts.items():
            if isinstance(mount, Mapping):
                # how it got onto the machine once placed (FUSE mount or copy), else the plan
                how = mount.get("how") or mount.get("note")
                text = f"{mount.get('url')} ({mount.get('mode')})" + (f": {how}" if how else "")
                facts.append((f"bucket {dest}", text))
    envs = task.get("envs")
    if isinstance(envs, Mapping):
        facts += [(f"env {key}", str(value)) for key, value in envs.items()]
    return facts


def _job_facts(job: Mapping[str, Any], now: float, tz: dt.tzinfo | None) -> list[tuple[str, str]]:
    owner = str(job.get("owner") or EMPTY)
    if job.get("owner_uid") is not None:
        owner += f" (uid {job['owner_uid']})"
    created = job.get("created_at")
    submitted = format_timestamp(created, tz)
    if created is not None:
        submitted += f" ({format_duration(now - created)} ago)"
    facts = [
        ("state", state_text(job)),
        ("reason", str(job.get("reason") or EMPTY)),
        *[("pipeline", text) for text in [pipeline_text(job)] if text],
        ("owner", owner),
        ("project", str(job.get("project") or EMPTY)),
        ("priority", format_scalar(job.get("priority"))),
        ("submitted", submitted),
        ("started", format_timestamp(job.get("started_at"), tz)),
        ("ended", format_timestamp(job.get("ended_at"), tz)),
    ]
    attempts = job_attempts(job, now)
    if len(attempts) > 1:
        total = format_duration(total_run_seconds(attempts))
        facts.append(("run time", f"{total} over {len(attempts)} attempts"))
    elif attempts:
        facts.append(("run time", format_duration(total_run_seconds(attempts))))
    elif job.get("started_at") is not None:
        facts.append(("run time", elapsed(job, now)))
    facts.append(("exit code", format_scalar(job.get("exit_code"))))
    deadline = job.get("deadline")
    if deadline is not None:
        remaining = deadline - now
        when = (
            f"in {format_duration(remaining)}"
            if remaining >= 0
            else f"{format_duration(-remaining)} ago"
        )
        facts.append(("deadline", f"{format_timestamp(deadline, tz)} ({when})"))
    facts.append(("cost", format_dollars(job.get("cost"))))
    facts += [("data out", text) for text in [data_out_text(job, tz)] if text]
    facts += [
        ("preemptions", format_scalar(job.get("preemptions", 0))),
        ("restarts", format_scalar(job.get("restarts", 0))),
    ]
    return facts


# what each kind of transfer is called, and what one and several of them are
_DATA_OUT = {
    "checkpoint": ("checkpoints", "pull", "pulls"),
    "log": ("logs", "batch", "batches"),
    "bucket": ("buckets", "copy", "copies"),
}


def data_out_text(job: Mapping[str, Any], tz: dt.tzinfo | None) -> str:
    """`checkpoints 12.00 GB in 3 pulls, $1.08 (last 2026-12-07 12:03:10); logs …`: the
    data transfer (egress) the job was charged for, by what moved."""
    parts = []
    for out in job.get("data_out") or ():
        what = str(out.get("what"))
        name, one, several = _DATA_OUT.get(what, (what, "transfer", "transfers"))
        count = int(out.get("transfers") or 0)
        size = int(out.get("bytes") or 0)
        when = format_timestamp(out.get("last_at"), tz)
        parts.append(
            f"{name} {format_bytes(size)} in {count} {one if count == 1 else several},"
            f" {format_money(out.get('cost'))} (last {when})"
        )
    return "; ".join(parts)


def _attempts_table(attempts: Sequence[Attempt], tz: dt.tzinfo | None) -> str:
    rows = [
        [
            str(attempt.number),
            placement_summary(attempt.placement),
            format_timestamp(attempt.began, tz),
            format_duration(attempt.run_seconds),
            attempt.outcome or "(still on it)",
        ]
        for attempt in attempts
    ]
    return format_table(_ATTEMPT_HEADERS, rows)


_MOVES = {"migration_proposed": "proposed", "migration_declined": "declined"}


def _move_facts(job: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The planner's latest word on moving the running job (a `migrate: true` one): proposed
    or declined, where to, what the move costs and the changeover it was priced with."""
    if job.get("state") != "RUNNING":
        return []
    since = job.get("started_at") or 0.0
    for event in reversed(job.get("events") or []):
        verdict = _MOVES.get(str(event.get("kind")))
        if verdict is None or (event.get("at") or 0.0) < since:
            continue
        data = event.get("data") or {}
        cost = format_dollars(data.get("move_cost"))
        text = f"{verdict}: to {data.get('to')}, the move costs {cost}"
        if data.get("changeover"):
            text += f"\n{data['changeover']}"
        return [("move", text)]
    return []


def _placement_facts(
    placement: Mapping[str, Any], extra: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    where = "/".join(
        str(placement[key]) for key in ("cloud", "region", "zone") if placement.get(key)
    )
    what = " ".join(
        part
        for part in (
            str(placement.get("instance_type") or ""),
            accelerators(placement),
            "spot" if placement.get("spot") else "on-demand",
        )
        if part
    )
    price = f"{format_money(placement.get('hourly_price'))}/h"
    if placement.get("expected_cost") is not None:
        price += f", about {format_dollars(placement['expected_cost'])} in total"
        if placement.get("egress_cost"):
            price += f" (of which {format_dollars(placement['egress_cost'])} moving its data)"
    facts = [
        ("where", where or EMPTY),
        ("what", what),
        ("price", price),
        ("why", str(placement.get("why") or EMPTY)),
    ]
    history = placement.get("history")
    if isinstance(history, list) and history:
        # the spot availability history the deadline policy decided on, one zone a line
        facts.append(("history", "\n".join(str(line) for line in history)))
    if placement.get("changeover"):  # the changeover the deadline policy planned with
        facts.append(("changeover", str(placement["changeover"]).removeprefix("changeover ")))
    facts += extra
    # continuation lines under their value (key_values indents by 2, pads keys, adds 2)
    pad = "\n" + " " * (4 + max(len(key) for key, _ in facts))
    return [(key, value.replace("\n", pad)) for key, value in facts]


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.split("\n"))
