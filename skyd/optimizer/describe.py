"""Human wording of what a job asked for, used in "why not placed" messages."""

from __future__ import annotations

from skyd.model import MICROS_PER_DOLLAR, OfferFilter


def dollars(micros: int) -> str:
    return f"${micros / MICROS_PER_DOLLAR:,.2f}"


def describe_filter(f: OfferFilter) -> str:
    """One phrase naming every constraint of a request, e.g. "16×H100 in country DE, spot only"."""
    text = (
        " or ".join(f"{count}×{name}" for name, count in f.accelerators)
        if f.accelerators
        else "any instance"
    )
    sizes = [f"cpus {f.cpus}" if f.cpus is not None else "", ""]
    if f.memory_gib is not None:
        sizes[1] = f"memory {f.memory_gib} GiB"
    for size in sizes:
        if size:
            text += f", {size}"
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
        text += " on " + ", ".join(pins)
    if f.countries:
        noun = "country" if len(f.countries) == 1 else "countries"
        text += f" in {noun} {', '.join(f.countries)}"
    if f.spot is True:
        text += ", spot only"
    elif f.spot is False:
        text += ", on-demand only"
    if f.max_hourly_price_micros is not None:
        text += f", at most {dollars(f.max_hourly_price_micros)}/h"
    if f.blocked:
        text += f", {len(f.blocked)} blocked scope(s)"
    return text
