"""Prometheus metrics of a running daemon (prometheus_client), served at /metrics.

What is in the store (jobs by state, queue depth, preemptions, credit balance and spend rate per
pool) is read when scraped, so it is never stale and costs nothing between scrapes; what happens
in flight (placement latency, provider calls and errors, loop lag) is counted as it happens.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from skyd.errors import NotFoundError, SkydError
from skyd.events import EventBus
from skyd.looplag import LoopLagMonitor
from skyd.model import JobState
from skyd.store import Store
from skyd.store import jobs as job_store

log = logging.getLogger("skyd.metrics")

PROVIDER_CALLS = ("launch", "describe", "stop", "start", "terminate", "instances")
WAITING = (JobState.PENDING.value, JobState.RECOVERING.value)
Credits = Callable[[sqlite3.Connection], Mapping[str, Any]]  # the books, read on a connection

_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# the exact worst lag over these recent spans (the histogram only bounds it by bucket); a
# scraper that polls more often than the shortest span sees every sample's maximum
LAG_WINDOWS_SECONDS = (2.0, 10.0)
Count = tuple[str, str, Callable[[], int]]  # name, help, how many so far


class _StoreCollector(Collector):
    """Families read from the store and the books at scrape time, on a read-only connection
    of their own in a worker thread (at 100k jobs a scrape reads for ~40 ms: not on the loop)."""

    def __init__(self, store: Store, credits: Credits | None, lag: LoopLagMonitor) -> None:
        self.store = store
        self.credits = credits
        self.lag = lag
        self.counts: list[Count] = []
        self._reader: Store | None = None

    def _conn(self) -> sqlite3.Connection:
        if self.store.path is None:  # an in-memory store (tests): its only connection
            return self.store.conn
        if self._reader is None:
            self._reader = self.store.reader()
        return self._reader.conn

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def collect(self) -> Iterable[Metric]:
        conn = self._conn()
        counts = dict.fromkeys((s.value for s in JobState), 0)
        rows = conn.execute("SELECT state, count(*) FROM jobs GROUP BY state")
        counts.update({str(state): int(n) for state, n in rows})
        jobs = GaugeMetricFamily("skyd_jobs", "Jobs by state", labels=["state"])
        for state, n in sorted(counts.items()):
            jobs.add_metric([state], n)
        yield jobs
        yield GaugeMetricFamily(
            "skyd_queue_depth",
            "Jobs waiting for a place (PENDING or RECOVERING)",
            value=sum(counts[s] for s in WAITING),
        )
        (preempted,) = conn.execute("SELECT coalesce(sum(preemptions), 0) FROM jobs").fetchone()
        yield CounterMetricFamily(
            "skyd_preemptions", "Spot preemptions of skyd's jobs", value=int(preempted)
        )
        yield GaugeMetricFamily(
            "skyd_loop_lag_max_seconds",
            f"Worst event-loop lag over the last {self.lag.window:.0f} s",
            value=self.lag.max_lag(),
        )
        recent = GaugeMetricFamily(
            "skyd_loop_lag_window_max_seconds",
            "Worst event-loop lag over the last `window` seconds (exact, not bucketed)",
            labels=["window"],
        )
        own = GaugeMetricFamily(
            "skyd_loop_lag_cpu_window_max_seconds",
            "Worst event-loop lag over the last `window` seconds counting only CPU time the "
            "daemon spent while late: cpu=process an upper bound of what its own work caused, "
            "cpu=loop_thread a lower bound (time other processes took is left out of both)",
            labels=["window", "cpu"],
        )
        for seconds in LAG_WINDOWS_SECONDS:
            window = f"{seconds:g}"
            recent.add_metric([window], self.lag.max_lag(seconds))
            own.add_metric([window, "process"], self.lag.max_cpu_lag(seconds))
            own.add_metric([window, "loop_thread"], self.lag.max_cpu_lag(seconds, thread=True))
        yield recent
        yield own
        for name, doc, read in self.counts:
            yield CounterMetricFamily(name, doc, value=read())
        if self.credits is not None:
            yield from self._books(self.credits(conn))

    @staticmethod
    def _books(view: Mapping[str, Any]) -> Iterable[Metric]:
        labels = ["pool", "cloud", "state"]
        balance = GaugeMetricFamily(
            "skyd_credit_balance_dollars", "What is left in each credit pool", labels=labels
        )
        burn = GaugeMetricFamily(
            "skyd_spend_rate_dollars_per_hour",
            "Average spend per hour over the last 7 days, per pool (pool=cash: no pool)",
            labels=labels,
        )
        for pool in view.get("pools", []):
            key = [str(pool["name"]), str(pool["cloud"]), str(pool["state"])]
            balance.add_metric(key, float(pool["balance"]))
            burn.add_metric(key, float(pool["burn_per_hour"]))
        cash = view.get("cash") or {}
        burn.add_metric(["cash", "", "active"], float(cash.get("burn_per_hour", 0.0)))
        yield balance
        yield burn


class Metrics:
    """One daemon's registry (not the process-global one: tests run several daemons)."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        *,
        credits: Credits | None = None,
        lag: LoopLagMonitor | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.lag = lag or LoopLagMonitor()
        self.registry = CollectorRegistry()
        self.placement_latency = Histogram(
            "skyd_placement_latency_seconds",
            "From submit to the first launch of a job (its first move to PROVISIONING)",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.provider_calls = Counter(
            "skyd_provider_calls",
            "Calls skyd made to provider APIs",
            ["provider", "call"],
            registry=self.registry,
        )
        self.provider_errors = Counter(
            "skyd_provider_errors",
            "Provider API calls that failed, by error code",
            ["provider", "call", "code"],
            registry=self.registry,
        )
        self.events = Counter(
            "skyd_events", "Events recorded, by kind", ["kind"], registry=self.registry
        )
        loop_lag = Histogram(
            "skyd_loop_lag_seconds",
            "How late the event loop woke a periodic task (each sample)",
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        self.lag.observers.append(loop_lag.observe)
        self._collector = _StoreCollector(store, credits, self.lag)
        self.registry.register(self._collector)
        self._scraping = threading.Lock()

    def close(self) -> None:
        with self._scraping:
            self._collector.close()

    def count(self, name: str, doc: str, read: Callable[[], int]) -> None:
        """Export a counter that a service keeps itself (e.g. the planner's passes)."""
        self._collector.counts.append((name, doc, read))

    def exposition(self) -> bytes:
        """The text format; call it off the loop (`scrape`), it reads the store."""
        with self._scraping:  # one scrape at a time on the reader connection
            return generate_latest(self.registry)

    async def scrape(self) -> bytes:
        return await asyncio.to_thread(self.exposition)

    def instrument(self, providers: Mapping[str, object]) -> None:
        """Count every provider API call and failure (the instances' own methods are wrapped,
        so `isinstance` and every other attribute stay as they were)."""
        for name, provider in providers.items():
            for call in PROVIDER_CALLS:
                method = getattr(provider, call, None)
                if method is None or not asyncio.iscoroutinefunction(method):
                    continue
                try:
                    setattr(provider, call, self._counted(name, call, method))
                except (AttributeError, TypeError):  # __slots__ or frozen: not counted
                    log.warning("provider %s: %s calls are not counted", name, call)

    def _counted(
        self, provider: str, call: str, method: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        calls = self.provider_calls.labels(provider, call)

        @functools.wraps(method)
        async def counted(*args: Any, **kwargs: Any) -> Any:
            calls.inc()
            try:
                return await method(*args, **kwargs)
            except Exception as exc:
                code = exc.code if isinstance(exc, SkydError) else type(exc).__name__
                self.provider_errors.labels(provider, call, code).inc()
                raise

        return counted

    async def run(self) -> None:
        """Follow the event bus: placement latency and events by kind; and sample loop lag."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.lag.run(), name="loop-lag")
            async with self.bus.subscribe() as queue:
                while True:
                    event = await queue.get()
                    self.events.labels(event.kind).inc()
                    if event.state == JobState.PROVISIONING.value and event.job_id is not None:
                        self._placed(event.job_id, event.at)

    def _placed(self, job_id: int, at: float) -> None:
        try:
            job = job_store.get_job(self.store, job_id)
        except NotFoundError:
            return
        if job.attempt <= 1:  # the first placement; later ones are recoveries
            self.placement_latency.observe(max(0.0, at - job.created_at))


METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)


async def metrics_handler(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    return web.Response(body=await metrics.scrape(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def parse_listen(text: str) -> tuple[str, int]:
    """`[host]:port` or `port`; the host defaults to loopback."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not [host]:port (e.g. 127.0.0.1:9464)")
    return host, int(port)


async def serve_tcp(metrics: Metrics, listen: str) -> web.AppRunner:
    """Serve only /metrics on a TCP address (the rest of the API needs the socket's peer
    identity, so it is never offered over TCP)."""
    host, port = parse_listen(listen)
    app = web.Application()
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics_handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("metrics served over TCP", extra={"address": f"{host}:{port}"})
    return runner
