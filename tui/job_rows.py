"""The jobs table's model: which columns, how a job becomes a row, filtering, sorting, and how
an event from the stream changes a job before the daemon is asked for the rest."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rich.text import Text

from tui.display import dollars, duration

JsonObject = dict[str, Any]

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "FAILED_SETUP", "CANCELLED"})
RUNNING_LIKE = frozenset({"RUNNING", "SETTING_UP"})

# Which theme variable colours each state: it follows the theme, so dark and light both read.
STATE_COLOUR_VARIABLE = {
    "PENDING": "text-warning",
    "PROVISIONING": "text-accent",
    "SETTING_UP": "text-accent",
    "RUNNING": "text-success",
    "RECOVERING": "text-warning",
    "SUCCEEDED": "text-success",
    "FAILED": "text-error",
    "FAILED_SETUP": "text-error",
    "CANCELLED": "text-muted",
}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    right: bool = False


# Widths include the one-space gap each cell starts with: together they fit an 80-column
# terminal beside the scrollbar.
COLUMNS: tuple[Column, ...] = (
    Column("id", "id", 6, right=True),
    Column("name", " name", 10),
    Column("owner", " owner", 8),
    Column("state", " state", 13),
    Column("placement", " placement", 13),
    Column("market", " mkt", 5),
    Column("runtime", "runtime", 7, right=True),
    Column("cost", "cost", 8, right=True),
    Column("slack", "slack", 8, right=True),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)

# Columns whose values vary in length: each takes what its longest value needs (up to a cap),
# and when the terminal is too narrow for that, the widest gives way first, down to its width
# in COLUMNS above (which fit 80 columns).
FLEXIBLE_CAPS = {"name": 41, "owner": 17, "placement": 49}


def _content_width(key: str, job: Mapping[str, Any]) -> int:
    # the cell's leading space, the value, and one more so that it never touches the next
    if key == "placement":
        return len(placement_text(job)) + 2
    return len(str(job.get(key) or "")) + 2


def natural_widths(
    jobs: Iterable[Mapping[str, Any]], start: Mapping[str, int] | None = None
) -> dict[str, int]:
    """What the flexible columns need to show these jobs' values whole (up to their caps)."""
    needed = dict(start or {c.key: len(c.label) + 1 for c in COLUMNS if c.key in FLEXIBLE_CAPS})
    for job in jobs:
        for key, cap in FLEXIBLE_CAPS.items():
            if needed[key] < cap:
                needed[key] = min(cap, max(needed[key], _content_width(key, job)))
    return needed


def fit_columns(natural: Mapping[str, int], width: int) -> tuple[Column, ...]:
    """COLUMNS with the flexible ones at their `natural` widths, narrowed to fit `width`."""
    widths = {c.key: natural.get(c.key, c.width) for c in COLUMNS}
    floors = {c.key: min(c.width, widths[c.key]) for c in COLUMNS if c.key in FLEXIBLE_CAPS}
    excess = sum(widths.values()) - width
    while excess > 0:
        shrinkable = [key for key in floors if widths[key] > floors[key]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda key: widths[key])
        widths[widest] -= 1
        excess -= 1
    return tuple(replace(c, width=widths[c.key]) for c in COLUMNS)


def runtime_seconds(job: Mapping[str, Any], now: float) -> float | None:
    started = job.get("started_at")
    if started is None:
        return None
    ended = job.get("ended_at")
    return max(0.0, (float(ended) if ended is not None else now) - float(started))


def cost_so_far(job: Mapping[str, Any], now: float) -> tuple[float, bool]:
    """What the job has cost, and whether that is our estimate rather than the daemon's ledger.

    The ledger lags a running job; until it catches up, the placement's hourly price times
    the runtime is the better figure.
    """
    recorded = float(job.get("cost") or 0.0)
    placement = job.get("placement") or {}
    runtime = runtime_seconds(job, now)
    if job.get("state") in RUNNING_LIKE and runtime is not None and placement:
        estimate = float(placement.get("hourly_price") or 0.0) * runtime / 3600.0
        if estimate > recorded:
            return estimate, True
    return recorded, False


def slack_seconds(job: Mapping[str, Any], now: float) -> float | None:
    """Time left before the deadline (negative when late); for a finished job, the margin it
    finished with."""
    deadline = job.get("deadline")
    if deadline is None:
        return None
    end = job.get("ended_at") if job.get("state") in TERMINAL else None
    return float(deadline) - (end if end is not None else now)


def placement_text(job: Mapping[str, Any]) -> str:
    placement = job.get("placement")
    if not placement:
        return "-"
    where = "/".join(str(p) for p in (placement.get("cloud"), placement.get("region")) if p)
    return f"{where} {placement.get('instance_type') or ''}".strip()


def market_text(job: Mapping[str, Any]) -> str:
    placement = job.get("placement")
    if not placement:
        return "-"
    return "spot" if placement.get("spot") else "od"


def cells(job: Mapping[str, Any], now: float, colours: Mapping[str, str]) -> dict[str, Text]:
    """Every cell of the job's row. Text objects, never markup: names are the users' own.
    A job being cancelled reads CANCELLING (SkyPilot's word; the state column is narrow)."""
    state = str(job.get("state", "?"))
    shown, colour = state, STATE_COLOUR_VARIABLE.get(state, "")
    if job.get("cancel_requested"):
        shown, colour = "CANCELLING", "text-warning"
    cost, estimated = cost_so_far(job, now)
    slack = slack_seconds(job, now)
    slack_style = colours.get("text-error", "") if slack is not None and slack < 0 else ""
    return {
        "id": _cell(str(job.get("id", "")), right=True),
        "name": _cell(str(job.get("name", ""))),
        "owner": _cell(str(job.get("owner", ""))),
        "state": _cell(shown, style=colours.get(colour, "")),
        "placement": _cell(placement_text(job)),
        "market": _cell(market_text(job)),
        "runtime": _cell(duration(runtime_seconds(job, now)), right=True),
        "cost": _cell(dollars(cost, estimated=estimated), right=True),
        "slack": _cell(duration(slack), style=slack_style, right=True),
    }


def _cell(value: str, *, style: str = "", right: bool = False) -> Text:
    text = Text(" ", end="")
    text.append(value, style=style)
    text.justify = "right" if right else "left"
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def needs_ticking(job: Mapping[str, Any]) -> bool:
    """Whether the row's runtime, cost or slack moves with the clock (redrawn each second)."""
    return job.get("state") not in TERMINAL and (
        job.get("started_at") is not None or job.get("deadline") is not None
    )


@dataclass(frozen=True)
class JobFilter:
    """Whitespace-separated terms, all of which must match: `field:value` matches inside that
    field (state, owner, name, cloud, project, spot), a bare word anywhere in the row."""

    terms: tuple[tuple[str | None, str], ...] = ()

    FIELDS = ("state", "owner", "name", "cloud", "project", "market", "id")

    @classmethod
    def parse(cls, text: str) -> JobFilter:
        terms: list[tuple[str | None, str]] = []
        for word in text.split():
            field, sep, value = word.partition(":")
            if sep and field.lower() in cls.FIELDS:
                terms.append((field.lower(), value.lower()))
            else:
                terms.append((None, word.lower()))
        return cls(tuple(terms))

    def matches(self, job: Mapping[str, Any]) -> bool:
        if not self.terms:
            return True
        fields = _searchable(job)
        everything = " ".join(fields.values())
        for field, value in self.terms:
            haystack = everything if field is None else fields.get(field, "")
            if value not in haystack:
                return False
        return True


def _searchable(job: Mapping[str, Any]) -> dict[str, str]:
    placement = job.get("placement") or {}
    return {
        "id": str(job.get("id", "")),
        "name": str(job.get("name", "")).lower(),
        "owner": str(job.get("owner", "")).lower(),
        "state": str(job.get("state", "")).lower(),
        "cloud": f"{placement.get('cloud', '')} {placement.get('region', '')}".lower(),
        "project": str(job.get("project") or "").lower(),
        "market": market_text(job),
    }


SortKey = Callable[[Mapping[str, Any]], Any]

# Terminal states sort after live ones; ties keep newest first via the id.
_STATE_ORDER = {
    s: i
    for i, s in enumerate(
        [
            "RUNNING",
            "RECOVERING",
            "SETTING_UP",
            "PROVISIONING",
            "PENDING",
            "FAILED",
            "FAILED_SETUP",
            "CANCELLED",
            "SUCCEEDED",
        ]
    )
}


def sort_key(column: str, now: float) -> SortKey:
    """How rows order by a column; missing values sort last (first when reversed)."""
    far = float("inf")
    keys: dict[str, SortKey] = {
        "id": lambda j: -int(j.get("id", 0)),
        "name": lambda j: str(j.get("name", "")).lower(),
        "owner": lambda j: str(j.get("owner", "")).lower(),
        "state": lambda j: _STATE_ORDER.get(str(j.get("state")), 99),
        "placement": lambda j: placement_text(j),
        "market": lambda j: market_text(j),
        "runtime": lambda j: -(runtime_seconds(j, now) or -1.0),
        "cost": lambda j: -cost_so_far(j, now)[0],
        "slack": lambda j: s if (s := slack_seconds(j, now)) is not None else far,
    }
    return keys[column]


def apply_event(job: Mapping[str, Any], event: Mapping[str, Any]) -> JsonObject | None:
    """The job as the event says it now is, or None when the job already reflects the event.

    Only the state and timestamps can be read off an event; the caller then fetches the job
    for the rest (placement, cost), so the row changes at once and fills in a moment later.
    """
    at = event.get("at")
    updated = job.get("updated_at")
    if at is not None and updated is not None and float(at) <= float(updated):
        return None
    changed = dict(job)
    state = event.get("state")
    if state:
        changed["state"] = state
        if state in RUNNING_LIKE and changed.get("started_at") is None:
            changed["started_at"] = at
        if state in TERMINAL:
            changed["cancel_requested"] = False  # as the daemon's view of an ended job
            if changed.get("ended_at") is None:
                changed["ended_at"] = at
    if event.get("kind") == "cancel_requested":
        changed["cancel_requested"] = True  # the row says so before the job is fetched again
    if at is not None:
        changed["updated_at"] = at
    return changed
