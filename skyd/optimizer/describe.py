"""Human wording of what a job asked for, used in "why not placed" messages."""

from __future__ import annotations

from skyd.model import MICROS_PER_DOLLAR, OfferFilter


def dollars(micros: int) -> str:
    return f"${micros / MICROS_PER_DOLLAR:,.2f}"


def describe_filter(f: OfferFilter) -> str:
    """One phrase naming every constraint of a request, e.g. "16×H100 in country DE, spot only"."""
    parts: list[str] = []
    if f.accelerators:
        parts.append(" or ".join(f"{count}×{name}" for name, count in f.accelerators))
    else:
        parts.append("any instance")
    if f.cpus is not None:
        parts.append(f"cpus {f.cpus}")
    if f.memory_gib is not None:
        parts.append(f"memory {f.memory_gib} GiB")
    pins = [
        f"{label} {value}"
        for label, value in (
            ("cloud", f.cloud),
            ("region", f.region),
            ("zone", f.zone),
            ("instance type", f.instance_type),
        )
        if value
    ]
    if pins:
        parts.append("on " + ", ".join(pins))
    if f.countries:
        noun = "country" if len(f.countries) == 1 else "countries"
        parts.append(f"in {noun} {', '.join(f.countries)}")
    if f.spot is True:
        parts.append("spot only")
    elif f.spot is False:
        parts.append("on-demand only")
    if f.max_hourly_price_micros is not None:
        parts.append(f"at most {dollars(f.max_hourly_price_micros)}/h")
    if f.blocked:
        parts.append(f"{len(f.blocked)} blocked scope(s)")
    head, *rest = parts
    return head if not rest else f"{head} " + ", ".join(rest)
