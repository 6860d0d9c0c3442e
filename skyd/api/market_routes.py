"""Market endpoints: cheapest offerings (`skyctl prices`), price history, and placement explain
(`skyctl optimize`)."""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web

from skyd.api.contract import endpoint
from skyd.api.jsonio import json_response
from skyd.api.market_schemas import (
    Explain,
    HistoryQuery,
    Offering,
    OptimizeRequest,
    PipelineExplain,
    PriceHistory,
    PricesQuery,
)
from skyd.api.validation import BadRequest, json_body, query_params
from skyd.catalog import Catalog
from skyd.catalog.table import REASONS
from skyd.errors import UnknownAcceleratorError
from skyd.market.live import LiveMarket
from skyd.model import POOL_CLOUDS, ExclusionReason, Offer
from skyd.optimizer import CandidateView
from skyd.optimizer.vectorized import RowViews
from skyd.providers.tiers import disk_note, network_note
from skyd.scheduler.driver import JobScheduler
from skyd.scheduler.pipelines import chain_upstream
from skyd.scheduler.placement import PlacementOutcome, job_filters
from skyd.spec import Overrides, ParseOptions, TaskSpec, parse_file
from skyd.spec.vocabulary import vocabulary_of
from skyd.store import market as market_store

MAX_EXPLAIN_ROWS = 500

# Explain lists candidates that would run but for a condition of the moment (a disabled
# provider, a quota, a block, the price cap) before ones that simply do not fit the task.
EXCLUSION_RANK = {
    ExclusionReason.PROVIDER_DISABLED: 1,
    ExclusionReason.NO_QUOTA: 2,
    ExclusionReason.OVER_BUDGET: 2,
    ExclusionReason.NO_CREDIT: 2,
    ExclusionReason.BLOCKED: 3,
    ExclusionReason.DEADLINE: 4,
    ExclusionReason.OVER_MAX_PRICE: 5,
    ExclusionReason.COUNTRY_NOT_ALLOWED: 6,
    ExclusionReason.NO_SPOT_MARKET: 7,
    ExclusionReason.NOT_PRICED: 7,
    ExclusionReason.PINNED_ELSEWHERE: 8,
    ExclusionReason.NO_FASTER_NETWORK: 8,
    ExclusionReason.RESOURCES_TOO_SMALL: 9,
    ExclusionReason.ACCELERATOR_MISMATCH: 9,
}


BadMarketRequest = BadRequest
MARKET_SCHEDULER: web.AppKey[JobScheduler] = web.AppKey("market_scheduler", JobScheduler)


def _known(field: str, value: str, known: list[str], what: str) -> str:
    """`value` if it is one of `known` (any case), else a 400 with did-you-mean."""
    folded = {k.casefold(): k for k in known}
    if value.casefold() in folded:
        return folded[value.casefold()]
    close = difflib.get_close_matches(value.casefold(), list(folded), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(folded[c]) for c in close)}? " if close else ""
    raise BadRequest(
        f"{field}: unknown {what} {value[:60]!r}; {hint}known: {', '.join(known[:40])}"
        + (" …" if len(known) > 40 else ""),
        field,
    )


@lru_cache(maxsize=8)
def _regions_of(market: LiveMarket, cloud: str | None) -> list[str]:
    return sorted({o.region for o in market.catalog.offers if cloud in (None, o.cloud)})


def offering_view(offer: Offer, market: LiveMarket) -> dict[str, Any]:
    live = market.spot_prices.get(offer.key)
    spot = live if live is not None else offer.spot_price_micros
    return {
        "key": offer.key,
        "cloud": offer.cloud,
        "region": offer.region,
        "zone": offer.zone,
        "instance_type": offer.instance_type,
        "accelerator_name": offer.accelerator_name or None,
        "accelerator_count": offer.accelerator_count,
        "vcpus": offer.vcpus,
        "memory_gib": offer.memory_gib,
        "price": None if offer.price_micros is None else offer.price_micros / 1_000_000,
        "spot_price": None if spot is None else spot / 1_000_000,
    }


def _gpu_filter(text: str, market: LiveMarket) -> tuple[str, int | None]:
    name, _, count = text.partition(":")
    try:
        canonical = market.catalog.normalize_accelerator(name.strip())
    except UnknownAcceleratorError as exc:
        raise BadMarketRequest(f"gpu: {exc.message}", "gpu") from None
    if not count:
        return canonical, None
    if not (count.isascii() and count.isdigit() and len(count) <= 4) or not 1 <= int(count) <= 1024:
        raise BadMarketRequest(
            f"gpu: count {count[:20]!r} must be a whole number from 1 to 1024 (e.g. A100:8)",
            "gpu",
        )
    return canonical, int(count)


def cheapest_offerings(
    market: LiveMarket,
    *,
    gpu: str | None,
    cloud: str | None,
    region: str | None,
    spot: bool,
    all_regions: bool,
) -> list[dict[str, Any]]:
    """Cheapest offering per (accelerator, count, cloud[, region]) in the chosen market."""
    cheapest = market.catalog.cheapest_per_accelerator(
        spot,
        cloud,
        region,
        accelerator=_gpu_filter(gpu, market) if gpu else None,
        per_region=all_regions,
        spot_prices=market.spot_prices,
    )
    return [offering_view(candidate.offer, market) for candidate in cheapest]


def _size_note(offer: Offer) -> str:
    """Why a machine's size did not fit: a cloud type must match the ask exactly, a pool's
    node must have at least as much (Amount.admits)."""
    size = f"{offer.instance_type} has {offer.vcpus:g} vCPUs, {offer.memory_gib:g} GiB"
    if offer.cloud in POOL_CLOUDS:
        return f"{size}: less than the task asks of one node"
    return f"{size}: a cloud instance type must have exactly the cpus/memory asked (N+: at least)"


def _candidate_view(view: CandidateView, providers: LiveMarket) -> dict[str, Any]:
    offer = view.candidate.offer
    note = view.note
    if view.excluded is ExclusionReason.RESOURCES_TOO_SMALL and not note:
        note = _size_note(offer)
    return {
        "cloud": offer.cloud,
        "region": offer.region,
        "zone": offer.zone,
        "instance_type": offer.instance_type,
        "accelerator_name": offer.accelerator_name or None,
        "accelerator_count": offer.accelerator_count,
        "spot": view.candidate.spot,
        "hourly_price": view.hourly_price_micros / 1_000_000,
        "expected_hours": view.expected_hours,
        "expected_cost": view.expected_cost_micros / 1_000_000,
        "compute_cost": view.compute_cost_micros / 1_000_000,
        "egress_cost": view.egress_cost_micros / 1_000_000,
        "preemptions_per_hour": view.preemptions_per_hour,
        "excluded": None if view.excluded is None else view.excluded.value,
        "note": note,
        "chosen": view.chosen,
        "alternative": view.alternative,
        "provider": providers.provider_for(offer.cloud),
    }


def explain_order(view: CandidateView) -> tuple[bool, int, int]:
    """Chosen first, then feasible, then by how final the exclusion is; cheaper first."""
    excluded = view.excluded
    rank = EXCLUSION_RANK.get(excluded, 0) if excluded is not None else -1
    return (not view.chosen, rank, view.expected_cost_micros)


def excluded_counts(candidates: Sequence[CandidateView]) -> dict[str, int]:
    """How many candidates each reason left out, most first (on the columns when the
    decision has them, so no view is built for it)."""
    if isinstance(candidates, RowViews):
        codes = np.bincount(np.asarray(candidates.codes, np.int64), minlength=len(REASONS) + 1)
        counts = Counter({REASONS[i - 1].value: int(n) for i, n in enumerate(codes) if i and n})
    else:
        counts = Counter(v.excluded.value for v in candidates if v.excluded is not None)
    return dict(counts.most_common())


def explain_view(outcome: PlacementOutcome, market: LiveMarket) -> dict[str, Any]:
    decision = outcome.decision
    candidates = decision.candidates
    if isinstance(candidates, RowViews):
        # thousands of rows over the full catalogs: sort the columns, build only those shown
        shown = candidates.ranked(EXCLUSION_RANK, MAX_EXPLAIN_ROWS)
    else:
        shown = sorted(candidates, key=explain_order)[:MAX_EXPLAIN_ROWS]
    chosen: dict[str, Any] | None = None
    if decision.chosen is not None:
        placement = decision.chosen
        chosen = {
            "cloud": placement.offer.cloud,
            "region": placement.offer.region,
            "zone": placement.offer.zone,
            "instance_type": placement.offer.instance_type,
            "accelerator_name": placement.offer.accelerator_name or None,
            "accelerator_count": placement.offer.accelerator_count,
            "spot": placement.spot,
            "hourly_price": placement.hourly_price_micros / 1_000_000,
            "expected_cost": placement.expected_cost_micros / 1_000_000,
            "compute_cost": (placement.expected_cost_micros - placement.egress_cost_micros)
            / 1_000_000,
            "egress_cost": placement.egress_cost_micros / 1_000_000,
            "expected_hours": placement.expected_hours,
            "provider": outcome.provider,
        }
    return {
        "chosen": chosen,
        "reason": decision.reason,
        "total_candidates": len(candidates),
        "excluded_counts": excluded_counts(candidates),
        "candidates": [_candidate_view(v, market) for v in shown],
    }


@endpoint(
    "GET", "/v1/prices", "Cheapest offering per accelerator, count and cloud (or region)",
    tag="market", query=PricesQuery, response=list[Offering],
)  # fmt: skip
async def prices(request: web.Request) -> web.Response:
    scheduler = request.app[MARKET_SCHEDULER]
    market = scheduler.market
    query = query_params(request, PricesQuery)
    cloud = _known("cloud", query.cloud, market.catalog.clouds, "cloud") if query.cloud else None
    region = query.region or None
    if region is not None:
        region = _known("region", region, _regions_of(market, cloud), "region")
    rows = cheapest_offerings(
        market,
        gpu=query.gpu or None,
        cloud=cloud,
        region=region,
        spot=query.spot,
        all_regions=query.all_regions,
    )
    return json_response(rows)


@endpoint(
    "GET", "/v1/prices/history", "One offering's observed spot prices and availability",
    tag="market", query=HistoryQuery, response=PriceHistory,
)  # fmt: skip
async def history(request: web.Request) -> web.Response:
    scheduler = request.app[MARKET_SCHEDULER]
    market = scheduler.market
    key = query_params(request, HistoryQuery).offering
    offer = market.catalog.offer_by_key(key)
    if offer is None:
        raise BadMarketRequest(
            f"offering: unknown offering {key[:100]!r}; use a key like "
            "aws/us-east-1/use1-az2/p3.2xlarge (the `key` of `skyctl prices --json`)",
            "offering",
        )
    series = market_store.history(scheduler.store, key)
    return json_response(
        {
            "offering": offering_view(offer, market),
            "catalog_spot_price": None
            if offer.spot_price_micros is None
            else offer.spot_price_micros / 1_000_000,
            "history": [
                {
                    "at": o.at,
                    "spot_price": None
                    if o.spot_price_micros is None
                    else o.spot_price_micros / 1_000_000,
                    "available": o.available,
                    "preemptions_per_hour": o.preemptions_per_hour,
                    "source": o.source,
                }
                for o in series
            ],
        }
    )


@endpoint(
    "POST", "/v1/optimize", "Where a task would run: every candidate, the chosen one, why",
    tag="market", body=OptimizeRequest, response=Explain | PipelineExplain, errors=(400, 422),
)  # fmt: skip
async def optimize(request: web.Request) -> web.Response:
    scheduler = request.app[MARKET_SCHEDULER]
    market = scheduler.market
    body = await json_body(request, OptimizeRequest)
    base_dir = Path(body.base_dir or "/")
    # A dry run: what only matters when the task runs (a missing local path, an env
    # without a value) is reported as a warning, not a refusal.
    parsed = parse_file(
        body.task_yaml,
        source=body.source or "task.yaml",
        options=ParseOptions(
            base_dir=base_dir if base_dir.is_absolute() else None,
            overrides=body.overrides or Overrides(),
            vocabulary=vocabulary_of(market.catalog),
            lenient=True,
        ),
    )
    await scheduler.learn_data(parsed.pipeline.stages)
    await scheduler.engine_known(parsed.pipeline.stages)
    views: list[dict[str, Any]] = []
    before: tuple[TaskSpec, Offer | None] | None = None  # the stage before, where it'd run
    for index, spec in enumerate(parsed.pipeline.stages):
        if before is not None and before[1] is not None:
            # a later stage reads what the one before wrote where that one is planned
            offer = before[1]
            spec = chain_upstream(spec, before[0], index - 1, None, offer.cloud, offer.region)
        view, chosen = _explain_stage(scheduler, spec)
        views.append(view)
        before = (spec, chosen)
    if not parsed.pipeline.is_pipeline:
        view = views[0]
    else:
        view = {
            "pipeline": parsed.pipeline.name,
            "stages": views,
            "chosen": all(stage.get("chosen") for stage in views),
            "reason": "; ".join(
                f"stage {index + 1}: {stage.get('reason')}" for index, stage in enumerate(views)
            ),
        }
    view["warnings"] = parsed.warnings
    return json_response(view)


def _explain_stage(scheduler: JobScheduler, spec: TaskSpec) -> tuple[dict[str, Any], Offer | None]:
    """The stage's explain view, and the offer it would run on (None: nowhere)."""
    market = scheduler.market
    job_filters(spec, market)  # unknown accelerators → a spec error naming the field
    now = scheduler.clock.now()
    context = replace(scheduler.placement_context(), every_cloud=True)
    outcome = scheduler.decide(spec, spec.deadline_at(now), context)
    view = explain_view(outcome, market)
    view["name"] = spec.name
    view["task"] = spec.public_summary()
    view["data"] = scheduler.data_moves(spec)
    if spec.upstream is not None:
        view["inputs_from"] = spec.upstream.model_dump()
    if outcome.decision.chosen is None:
        # what would be chosen if every cloud's provider were enabled
        hypothetical = scheduler.decide(
            spec, spec.deadline_at(now), replace(context, assume_all_providers=True)
        )
        chosen = hypothetical.decision.chosen
        if chosen is not None:
            offer = chosen.offer
            view["if_all_providers_enabled"] = {
                "cloud": offer.cloud,
                "region": offer.region,
                "zone": offer.zone,
                "instance_type": offer.instance_type,
                "spot": chosen.spot,
                "hourly_price": chosen.hourly_price_micros / 1_000_000,
                "expected_cost": chosen.expected_cost_micros / 1_000_000,
                "compute_cost": (chosen.expected_cost_micros - chosen.egress_cost_micros)
                / 1_000_000,
                "egress_cost": chosen.egress_cost_micros / 1_000_000,
                "reason": hypothetical.decision.reason,
            }
    _tier_notes(view, spec, market.catalog)
    return view, outcome.decision.chosen.offer if outcome.decision.chosen else None


def _tier_notes(view: dict[str, Any], spec: TaskSpec, catalog: Catalog) -> None:
    """What disk_tier / network_tier become where the task would run (never silently
    dropped): the chosen machine, else the one it would get with every provider enabled."""
    target = view.get("chosen") or view.get("if_all_providers_enabled")
    if not isinstance(target, dict):
        return
    where = str(target.get("provider") or target["cloud"])
    tiers = next((a for a in spec.alternatives if a.disk_tier or a.network_tier), spec.resources)
    disk = disk_note(where, tiers.disk_tier, str(target["instance_type"]))
    key = "/".join(str(target.get(k) or "") for k in ("cloud", "region", "zone", "instance_type"))
    network = network_note(str(target["cloud"]), tiers.network_tier, catalog.offer_by_key(key))
    view["task"].update({"disk": disk} if disk else {})
    view["task"].update({"network": network} if network else {})


def add_market_routes(app: web.Application, scheduler: JobScheduler) -> None:
    app[MARKET_SCHEDULER] = scheduler
    app.add_routes(
        [
            web.get("/v1/prices", prices),
            web.get("/v1/prices/history", history),
            web.post("/v1/optimize", optimize),
        ]
    )
