"""Admission: check a submission (feasible at all, deadline ahead, budgets) and store it.

Submits arriving in one loop turn share one transaction (one WAL append); each caller is
answered only after its own job is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from skyd.clock import Clock
from skyd.errors import InfeasibleError, ProviderError, SkydError, SpecError
from skyd.identity import Caller
from skyd.market.live import LiveMarket
from skyd.model import ExclusionReason
from skyd.scheduler.interfaces import BudgetGate, NoBudgets
from skyd.scheduler.placement import PlacementContext, PlacementOutcome, Placer
from skyd.scheduler.transitions import Journal
from skyd.spec import PipelineSpec, TaskSpec
from skyd.spec.task import NO_BUCKET_CLOUDS
from skyd.store import Store
from skyd.store import jobs as job_store
from skyd.store import pipelines as pipeline_store
from skyd.store.records import EventRecord, JobRecord

FEASIBILITY_CACHE_SIZE = 512

Stored = tuple[JobRecord, EventRecord]


class Admission:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        market: LiveMarket,
        placer: Placer,
        providers: Mapping[str, object],
        journal: Journal,
    ) -> None:
        self.store = store
        self.clock = clock
        self.market = market
        self.placer = placer
        self.providers = providers
        self.journal = journal
        self.budgets: BudgetGate = NoBudgets()
        self.accepting = True
        self._feasible_cache: dict[tuple[object, ...], PlacementOutcome] = {}
        self._to_insert: list[tuple[dict[str, Any], asyncio.Future[Stored]]] = []

    def submit(self, spec: TaskSpec, *, caller: Caller, base_dir: str) -> JobRecord:
        """Admit and store a job in its own transaction."""
        new_job, hold = self.admit(spec, caller=caller, base_dir=base_dir)
        job, event = job_store.insert_job(self.store, **new_job)
        return self._admitted(job, event, hold)

    async def submit_grouped(self, spec: TaskSpec, *, caller: Caller, base_dir: str) -> JobRecord:
        """Like submit, but submits arriving in the same loop turn commit together (one
        transaction, one WAL append): each caller is answered only after its job is stored."""
        new_job, hold = self.admit(spec, caller=caller, base_dir=base_dir)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Stored] = loop.create_future()
        self._to_insert.append((new_job, done))
        if len(self._to_insert) == 1:
            loop.call_soon(self._insert_grouped)
        job, event = await done
        return self._admitted(job, event, hold)

    def submit_pipeline(
        self, pipeline: PipelineSpec, *, caller: Caller, base_dir: str
    ) -> list[JobRecord]:
        """Admit every stage (a stage that could never run refuses the whole pipeline,
        naming it), then store them together; later stages wait for the one before."""
        admitted: list[tuple[dict[str, Any], str | None]] = []
        for index, spec in enumerate(pipeline.stages):
            try:
                admitted.append(self.admit(spec, caller=caller, base_dir=base_dir))
            except SkydError as exc:
                exc.message = f"stage {index + 1} ({spec.name or 'unnamed'}): {exc.message}"
                exc.args = (exc.message,)
                raise
        stored = pipeline_store.insert_pipeline(
            self.store, pipeline.name, [new_job for new_job, _ in admitted]
        )
        return [
            self._admitted(job, event, hold)
            for (job, event), (_, hold) in zip(stored, admitted, strict=True)
        ]

    def _insert_grouped(self) -> None:
        batch, self._to_insert = self._to_insert, []
        try:
            stored = job_store.insert_jobs(self.store, [new_job for new_job, _ in batch])
        except Exception as exc:  # nothing of the batch was stored: every caller hears why
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, done), result in zip(batch, stored, strict=True):
            if not done.done():
                done.set_result(result)

    def _admitted(self, job: JobRecord, event: EventRecord, hold: str | None) -> JobRecord:
        self.journal.publish(event)
        if hold:
            self.journal.note_waiting(job, f"held for budget: {hold}")
        return job

    def admit(
        self, spec: TaskSpec, *, caller: Caller, base_dir: str
    ) -> tuple[dict[str, Any], str | None]:
        """Check a submission (feasible, deadline, budgets) and say what to store."""
        if not self.accepting:
            raise ProviderError("skyd is shutting down; submit again when it is back")
        now = self.clock.now()
        deadline = spec.deadline_at(now)
        if deadline is not None and deadline <= now:
            raise SpecError(
                f"deadline: {spec.deadline.text if spec.deadline else ''} is already past; "
                "give a future time or a duration like 36h",
                "deadline",
            )
        # feasible at all, ignoring what is busy or blocked right now? (a sweep submits the
        # same resources many times: the answer is kept until the market changes)
        outcome = self._feasibility(spec)
        if outcome.decision.chosen is None:
            # the failure path may be slow: look at every cloud to say where it is offered
            outcome = self.placer.decide(spec, context=PlacementContext(every_cloud=True))
            disabled = sorted(
                {
                    view.candidate.offer.cloud
                    for view in outcome.decision.candidates
                    if view.excluded == ExclusionReason.PROVIDER_DISABLED
                }
            )
            hint = (
                f"; offered on {', '.join(disabled)}, whose providers are not enabled"
                f" (enabled: {', '.join(sorted(self.providers)) or 'none'})"
                if disabled
                else ""
            )
            hint += self._too_many_nodes(spec, outcome)
            pinned = {str(alt.cloud) for alt in spec.alternatives if alt.cloud} & NO_BUCKET_CLOUDS
            if spec.storage_mounts and pinned:
                hint += (
                    f"; bucket file_mounts are not mounted on {', '.join(sorted(pinned))} "
                    "jobs yet (VMs, lab hosts and this host mount them)"
                )
            images = sorted({alt.docker_image for alt in spec.alternatives if alt.docker_image})
            if images:
                hint += (
                    f"; image_id docker:{images[0]} needs a provider that runs containers: "
                    "skyd never runs it on the bare host (local, ssh, sim)"
                    + (
                        "; this host has no container engine that answers (docker or podman)"
                        if "local" in self.providers
                        and "local" not in self.placer.market.container_clouds
                        else ""
                    )
                )
            raise InfeasibleError(f"{outcome.decision.reason}{hint}")
        chosen = outcome.decision.chosen
        hourly = chosen.hourly_price_micros * spec.num_nodes if chosen else None
        # every job belongs to a known project (its own, if the caller may charge it, or the
        # default one), and is admitted against that project's, its owner's and the lab's
        # budgets; may refuse
        project = self.budgets.resolve_project(spec.project, caller)
        decision = self.budgets.check_submit(spec, caller, hourly, project=project)
        hold = decision.message if decision.hold else None
        new_job = {
            "name": spec.name or "job",
            "owner_uid": caller.uid,
            "owner_name": caller.name,
            "project": project,
            "priority": spec.priority,
            "spec_json": spec.to_json(),
            "base_dir": base_dir,
            "deadline": deadline,
            "now": now,
        }
        return new_job, hold

    def _too_many_nodes(self, spec: TaskSpec, outcome: PlacementOutcome) -> str:
        """Why no provider can hold the gang, and the largest num_nodes that could run."""
        most: tuple[int, str] | None = None
        for view in outcome.decision.candidates:
            if view.excluded != ExclusionReason.TOO_FEW_NODES:
                continue
            offer = view.candidate.offer
            limit = self.market.max_nodes(offer)
            if limit is not None and (most is None or limit > most[0]):
                where = offer.instance_type + (f" in {offer.zone}" if offer.zone else "")
                most = (limit, f"{self.market.provider_for(offer.cloud)} ({where})")
        if most is None:
            return ""
        return (
            f"; num_nodes: {spec.num_nodes} is more nodes than any enabled provider can run "
            f"at once: at most {most[0]}, on {most[1]}; ask for num_nodes <= {most[0]} or "
            "enable a cloud provider"
        )

    def estimated_hourly(self, job: JobRecord) -> int | None:
        """What a waiting job would cost an hour where it would go now (all nodes; None if
        nowhere), for budget checks before it has a placement: an unplaced job is not free."""
        spec = TaskSpec.from_json(job.spec_json)
        chosen = self._feasibility(spec).decision.chosen
        return None if chosen is None else chosen.hourly_price_micros * spec.num_nodes

    def _feasibility(self, spec: TaskSpec) -> PlacementOutcome:
        key = (
            spec.resources.model_dump_json(),
            spec.num_nodes,
            spec.objective,
            tuple(sorted(spec.estimated_runtime.items())),
            self.market.version,
        )
        cached = self._feasible_cache.get(key)
        if cached is None:
            cached = self.placer.decide(spec)
            if len(self._feasible_cache) >= FEASIBILITY_CACHE_SIZE:
                self._feasible_cache.clear()
            self._feasible_cache[key] = cached
        return cached
