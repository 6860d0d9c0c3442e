"""Synthetic spot traces of a character unlike the shipped set, generated from a seed.

Each zone alternates up and down runs drawn from its own distributions (a two-state
semi-Markov chain with exponential run lengths; outages are a mixture of short and long
ones), sampled at probe times that are irregular around a nominal interval; spot prices
hover around a zone's base price with occasional spikes above on demand. The set is
written in the trace-directory format (bench/spot/FORMAT.md), so it goes through the
same loader as real traces:

    python -m bench.spot.synthetic --seed 3 --out /tmp/synth3

A second family, `--family many-zones`, has 13 zones in 4 regions that are alike:
memoryless up runs of 2-6 h and outages of 0.2-1 h on average, each zone's drawn from
the seed, 10-minute probes, spot at 28-34 % of its region's on-demand price. With three
or four zones a region, one of them is nearly always up: a job need not leave its
region, and runs' ages say nothing of their rest, so a policy that reads heavy tails
into a week of memoryless runs moves for nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np


@dataclass(frozen=True, slots=True)
class ZoneCharacter:
    """How one synthetic zone behaves (hours, and prices as a share of on demand)."""

    name: str
    mean_up_hours: float
    short_outage_hours: float
    long_outage_hours: float
    short_share: float  # share of outages that are short
    spot_share: float  # base spot price / on-demand price
    spikes_per_day: float = 0.0  # price spikes above on demand


# Zones of different character: short outages in high availability (shorter than the
# usual changeover), long outages, mixtures, scarce capacity, price spikes.
CHARACTERS = (
    ZoneCharacter("flicker", 1.5, 0.06, 1.0, 0.9, 0.32),
    ZoneCharacter("steady", 20.0, 0.1, 3.0, 0.5, 0.30),
    ZoneCharacter("mixed", 2.0, 0.1, 4.0, 0.7, 0.35),
    ZoneCharacter("long-outages", 5.0, 0.5, 3.0, 0.2, 0.33),
    ZoneCharacter("scarce", 0.7, 0.2, 3.0, 0.3, 0.45),
    ZoneCharacter("spiky", 6.0, 0.08, 2.0, 0.8, 0.30, spikes_per_day=3.0),
)
REGIONS = (("syn-east", 3.06), ("syn-west", 3.24), ("syn-south", 2.91))
TICKS = (195.0, 600.0, 300.0)
FAMILIES = ("regions", "many-zones")
# many-zones: regions and their on-demand prices, zones a region, probe interval
MANY_REGIONS = (("syn-central", 2.48), ("syn-east", 2.55), ("syn-europe", 2.73), ("syn-asia", 2.86))
MANY_ZONES = 13
MANY_TICK = 600.0


def many_zone_characters(rng: np.random.Generator) -> list[tuple[str, str, float, ZoneCharacter]]:
    """(name, region, on-demand price, character) of the many-zones family's 13 zones."""
    out = []
    for i in range(MANY_ZONES):
        region, on_demand = MANY_REGIONS[i % len(MANY_REGIONS)]
        name = f"{region}-{'abcd'[i // len(MANY_REGIONS)]}"
        down = float(rng.uniform(0.2, 1.0))
        character = ZoneCharacter(
            name, float(rng.uniform(2.0, 6.0)), down, down, 1.0, float(rng.uniform(0.28, 0.34))
        )
        out.append((name, region, on_demand, character))
    return out


def _runs(rng: np.random.Generator, zone: ZoneCharacter, hours: float) -> list[tuple[float, bool]]:
    """(start hour, available) of each run until `hours`."""
    out: list[tuple[float, bool]] = []
    t, up = 0.0, bool(rng.random() < 0.5)
    while t < hours:
        out.append((t, up))
        if up:
            t += rng.exponential(zone.mean_up_hours)
        else:
            short = rng.random() < zone.short_share
            t += rng.exponential(zone.short_outage_hours if short else zone.long_outage_hours)
        up = not up
    return out


def generate(seed: int, out: Path, days: float = 30.0, family: str = "regions") -> Path:
    """Write a synthetic trace directory of `family` for `seed` into `out` and return it."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    rng = np.random.default_rng(seed)
    if family == "many-zones":
        tick = MANY_TICK
        chosen = many_zone_characters(rng)
    else:
        tick = TICKS[seed % len(TICKS)]
        chosen = [
            (f"{REGIONS[i % len(REGIONS)][0]}-{c.name}", *REGIONS[i % len(REGIONS)], c)
            for i, c in enumerate(CHARACTERS)
        ]
    hours = days * 24
    count = int(hours * 3600 / tick)
    # Irregular probes: the nominal interval plus a few seconds of jitter, and now and
    # then a late probe (half an interval more).
    gaps = tick + rng.integers(-1, 4, size=count).astype(np.float64)
    gaps += np.where(rng.random(count) < 0.01, tick / 2, 0.0)
    seconds = np.concatenate([[0.0], np.cumsum(gaps[:-1])]).round()
    stamps = seconds / 3600.0
    out.mkdir(parents=True, exist_ok=True)
    began = datetime(2026, 1, 1, tzinfo=UTC)
    dates = [(began + timedelta(seconds=float(s))).strftime("%Y-%m-%d %H:%M:%S") for s in seconds]
    zones: dict[str, dict[str, object]] = {}
    prices: dict[str, list[float]] = {}
    for i, (name, region, on_demand, character) in enumerate(chosen):
        runs = _runs(rng, character, hours + 1)
        starts = np.array([s for s, _ in runs])
        values = np.array([v for _, v in runs])
        available = values[np.searchsorted(starts, stamps, side="right") - 1]
        base = character.spot_share * on_demand
        price = base * (1 + 0.05 * np.sin(stamps / 24 * 2 * np.pi + i))
        for _ in range(rng.poisson(character.spikes_per_day * days)):
            at = rng.uniform(0, hours)
            spike = (stamps >= at) & (stamps < at + rng.uniform(0.3, 3.0))
            price = np.where(spike, on_demand * rng.uniform(1.1, 2.0), price)
        csv = f"{name}.csv"
        lines = ["date,availability"] + [
            f"{d},{int(a)}" for d, a in zip(dates, available, strict=True)
        ]
        (out / csv).write_text("\n".join(lines) + "\n", encoding="utf-8")
        prices[name] = [round(float(p), 4) for p in price]
        zones[name] = {
            "region": region,
            "availability_file": csv,
            "spot_prices_key": name,
            "on_demand_price": on_demand,
        }
    (out / "spot_prices.json").write_text(json.dumps(prices), encoding="utf-8")
    meta = {
        "name": f"synthetic-{seed}" if family == "regions" else f"synthetic-{family}-{seed}",
        "description": (
            "synthetic traces (bench.spot.synthetic, "
            + ("" if family == "regions" else f"family {family}, ")
            + f"seed {seed}, {tick:g} s probes)"
        ),
        "cloud": "synthetic",
        "instance_type": "synthetic.gpu",
        "accelerator": "V100:1",
        "on_demand_price": chosen[0][2],
        "spot_prices_file": "spot_prices.json",
        "zones": zones,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.spot.synthetic", description=__doc__)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="directory to write the trace set into")
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument(
        "--family",
        choices=FAMILIES,
        default="regions",
        help="regions: 6 zones of different character in 3 regions (default); "
        "many-zones: 13 alike memoryless zones in 4 regions",
    )
    args = p.parse_args(argv)
    if args.days <= 4:
        print("error: --days must be > 4 (a job's deadline must fit)", file=sys.stderr)
        return 2
    print(generate(args.seed, Path(args.out), args.days, args.family))
    return 0


if __name__ == "__main__":
    sys.exit(main())
