"""How money looks to a human: the `credits` pools table and the `costs` report."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skyctl.render import (
    EMPTY,
    format_dollars,
    format_money,
    format_relative,
    format_table,
    format_timestamp,
    parse_time,
)

_POOL_HEADERS = (
    "NAME",
    "CLOUD",
    "SCOPE",
    "STATE",
    "GRANTED",
    "SPENT",
    "LEFT",
    "BURN",
    "RUNS OUT",
    "EXPIRES",
)


def _date(value: Any) -> str:
    epoch = parse_time(value)
    return EMPTY if epoch is None else format_timestamp(epoch)[:10]


def _scope(pool: Mapping[str, Any]) -> str:
    parts = [str(pool[key]) for key in ("account", "region") if pool.get(key)]
    return "/".join(parts) or "all"


def credits_text(payload: Mapping[str, Any], now: float) -> str:
    """The pools as one table, then cash spending and the warnings a lab admin acts on."""
    pools = payload.get("pools") or []
    lines: list[str] = []
    if pools:
        rows = [
            [
                str(pool.get("name") or pool.get("id")),
                str(pool.get("cloud") or EMPTY),
                _scope(pool),
                str(pool.get("state") or EMPTY),
                format_dollars(pool.get("amount")),
                format_dollars(pool.get("spent")),
                format_dollars(pool.get("balance")),
                f"{format_money(pool.get('burn_per_hour'))}/h",
                _date(pool.get("projected_run_out")),
                _date(pool.get("expires_at")),
            ]
            for pool in pools
        ]
        lines.append(format_table(_POOL_HEADERS, rows))
    else:
        lines.append("No credit pools (admins add one with `skyctl credits add NAME …`).")
    cash = payload.get("cash")
    if isinstance(cash, Mapping):
        lines.append(
            f"\nPaid outside any pool: {format_dollars(cash.get('spent'))} so far, "
            f"{format_money(cash.get('burn_per_hour'))}/h now."
        )
    for pool in pools:
        name = pool.get("name") or pool.get("id")
        if pool.get("runs_out_before_expiry"):
            when = _date(pool.get("projected_run_out"))
            lines.append(f"! {name} runs out {when}, before it expires, at the current burn.")
        elif pool.get("state") == "active" and (pool.get("unused_at_expiry") or 0) > 0:
            unused = format_dollars(pool.get("unused_at_expiry"))
            lines.append(f"  {name}: {unused} would be left unused at expiry at the current burn.")
    return "\n".join(lines)


def pool_text(pool: Mapping[str, Any], now: float) -> str:
    """One pool after add/set/topup/retire: a one-row table."""
    return credits_text({"pools": [pool]}, now)


def costs_text(payload: Mapping[str, Any], now: float) -> str:
    """`Spend by user since …`, a row per group with its share, and the total."""
    by = str(payload.get("by") or "user")
    rows = payload.get("rows") or []
    since = parse_time(payload.get("since"))
    period = (
        f"since {format_timestamp(since)[:16]} ({format_relative(since, now)})"
        if since is not None
        else "since the start"
    )
    title = f"Spend by {by} {period}"
    if not rows:
        return f"{title}: nothing spent."
    total = float(payload.get("total") or 0)
    with_owner = any("owner" in row for row in rows)
    # data sent out of clouds (checkpoint pulls), a column once any was charged
    with_transfer = any(row.get("data_transfer_bytes") for row in rows)
    headers = [by.upper(), *(["NAME"] if by == "job" else []), *(["OWNER"] if with_owner else [])]
    headers += ["AMOUNT", *(["DATA OUT"] if with_transfer else []), "SHARE"]
    table = []
    for row in rows:
        amount = float(row.get("amount") or 0)
        cells = [str(row.get("key") if by == "job" else row.get("name") or row.get("key"))]
        if by == "job":
            cells.append(str(row.get("name") or EMPTY))
        if with_owner:
            cells.append(str(row.get("owner") or EMPTY))
        cells.append(format_dollars(amount))
        if with_transfer:
            cells.append(_transfer_cell(row))
        share = f"{100 * amount / total:.0f}%" if total > 0 else EMPTY
        table.append([*cells, share])
    currency = payload.get("currency") or "USD"
    return f"{title}\n{format_table(headers, table)}\nTotal: {format_dollars(total)} {currency}"


def _transfer_cell(row: Mapping[str, Any]) -> str:
    """`$0.27 / 3.00 GB`: what the row paid for data leaving clouds, and how much left."""
    size = int(row.get("data_transfer_bytes") or 0)
    if not size:
        return EMPTY
    return f"{format_dollars(float(row.get('data_transfer') or 0))} / {size / 1e9:.2f} GB"
