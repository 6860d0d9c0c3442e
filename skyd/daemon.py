"""Daemon wiring: builds the services, runs them in one TaskGroup, shuts down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import functools
import gc
import logging
import os
import signal
import socket
from collections.abc import Callable, Mapping
from pathlib import Path

from aiohttp import web

from skyd.accounting import Accountant, MarketPrices
from skyd.accounting.bucket_transfers import BucketCharges
from skyd.accounting.optimizer_inputs import optimizer_budgets, optimizer_pools
from skyd.accounting.pull_pricing import PullPricing
from skyd.accounting.reports import credits_view
from skyd.accounting.transfers import TransferCharges
from skyd.api.app import build_app, serve_unix
from skyd.catalog import Catalog, default_catalog_dir
from skyd.catalog.locate import candidate_dirs
from skyd.clock import Clock, SystemClock
from skyd.clusters import ClusterService, LocalSessionProbe, NvidiaSmiProbe
from skyd.config import ConfigError, Settings
from skyd.daemon_providers import build_cloud_providers, build_providers
from skyd.errors import StateLockedError
from skyd.events import EventBus
from skyd.looplag import LoopLagMonitor
from skyd.market.advisor import SpotAdvisorSource
from skyd.market.aws_spot import AwsSpotPriceSource
from skyd.market.data_location import DataLocator, locator_for
from skyd.market.live import LiveMarket
from skyd.market.offer_refresh import OfferRefresh
from skyd.market.pollers import MarketPoller
from skyd.market.sources import MarketSource
from skyd.metrics import Metrics, serve_tcp
from skyd.optimizer import Quota, SolverLimits
from skyd.optimizer.egress import find_egress_table
from skyd.providers.base import OfferRefresher, Provider
from skyd.providers.sim import SimProvider
from skyd.runner.engines import probe_in_background, working_engine
from skyd.runner.process import ProcessRunner
from skyd.scheduler.driver import JobScheduler
from skyd.scheduler.plan_child import PlanWorld, ProviderShape
from skyd.scheduler.plan_process import ChildPlanner, provider_shapes
from skyd.scheduler.planner import Planner
from skyd.sdnotify import notify
from skyd.store import Store, open_store
from skyd.store.market import Observation
from skyd.watchdog import ExitWatchdog

log = logging.getLogger("skyd.daemon")

CLOUDS_OVER_SSH = ("aws", "gcp", "azure")
CHECKPOINT_SECONDS = 5.0


def claim_socket(path: Path) -> int:
    """Take the socket's lock file (no two daemons on one socket) and clear a stale socket."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateLockedError(f"another skyd is serving the socket {path}") from None
    if path.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left behind by a daemon that was killed
        else:
            os.close(fd)
            raise StateLockedError(f"something is already listening on {path}")
        finally:
            probe.close()
    return fd


def build_market_sources(
    settings: Settings, market: LiveMarket, providers: Mapping[str, Provider], clock: Clock
) -> list[MarketSource]:
    sources: list[MarketSource] = []
    advisor = settings.market.advisor_file or default_catalog_dir() / "aws-spot-advisor.json"
    if advisor.exists():
        sources.append(
            SpotAdvisorSource(
                advisor,
                market.catalog.offers,
                clock,
                interval_seconds=settings.market.advisor_interval_seconds,
            )
        )
    if settings.market.poll_aws_spot_prices or "aws" in providers:
        sources.append(
            AwsSpotPriceSource(
                market.catalog.offers,
                endpoint_url=settings.market.aws_endpoint_url or None,
                interval_seconds=settings.market.aws_spot_interval_seconds,
            )
        )
    return sources


def build_quotas(settings: Settings) -> list[Quota]:
    return [
        Quota(
            name=q.name,
            cloud=q.cloud,
            resource=q.resource,  # type: ignore[arg-type]  # validated by the config loader
            limit=q.limit,
            region=q.region,
            spot=q.spot,
        )
        for q in settings.quotas
    ]


async def _warm(market: LiveMarket) -> None:
    await asyncio.to_thread(market.warm)
    # the columns live as long as the daemon: out of the collector's passes, like the rest
    gc.freeze()


def _engine_known(market: LiveMarket, probe: asyncio.Future[str | None]) -> None:
    engine = None if probe.cancelled() or probe.exception() else probe.result()
    market.container_clouds = frozenset({"local"}) if engine else frozenset()
    market.version += 1  # placements decided without the answer are stale
    log.info("container engine on this host: %s", engine or "none (docker jobs refused)")


class Daemon:
    """Everything one running skyd owns; `run()` returns the process exit code."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        providers: Mapping[str, Provider] | None = None,
        force_exit: bool = False,
        engine_probe: Callable[[], str | None] = working_engine,
    ) -> None:
        """`force_exit`: past the shutdown budget, end the process (for `skyd run` only);
        `engine_probe`: which container engine answers on this host (tests slow it down)."""
        self.settings = settings
        self._engine_probe = engine_probe
        self.clock = clock or SystemClock()
        self._providers = providers
        self._watchdog = ExitWatchdog(settings.shutdown_budget_seconds) if force_exit else None
        self._stop_at: float | None = None  # loop time of the stop signal
        self.stop_requested = asyncio.Event()
        self.ready = asyncio.Event()
        self.store: Store | None = None
        self.scheduler: JobScheduler | None = None
        self.offer_refresh: OfferRefresh[dict[str, ProviderShape]] | None = None
        self.web_app: web.Application | None = None
        self.metrics: Metrics | None = None

    async def _checkpoints(self) -> None:
        """Keep the WAL short without ever checkpointing on the event loop."""
        assert self.store is not None
        while True:
            await self.clock.sleep(CHECKPOINT_SECONDS)
            try:
                await asyncio.to_thread(self.store.checkpoint)
            except Exception:
                log.exception("WAL checkpoint failed; retrying later")

    def request_stop(self) -> None:
        """Begin a graceful stop; the shutdown budget counts from here."""
        if self._stop_at is None:
            self._stop_at = asyncio.get_running_loop().time()
            if self._watchdog is not None:
                self._watchdog.arm()
        self.stop_requested.set()

    def _budget_left(self) -> float:
        """Seconds of the shutdown budget not yet spent since the stop signal."""
        spent = asyncio.get_running_loop().time() - (self._stop_at or 0.0)
        return max(0.0, self.settings.shutdown_budget_seconds - spent)

    async def run(self) -> int:
        settings = self.settings
        socket_lock = claim_socket(settings.socket_path)
        try:
            self.store = open_store(settings.state_dir)
        except BaseException:
            os.close(socket_lock)
            raise
        bus = EventBus()
        runner = ProcessRunner(
            on_exit=bus.changed, write_back_s=settings.local.cancel_write_back_seconds
        )
        catalog = Catalog.load(settings.catalog_dir)
        providers = dict(self._providers or build_providers(settings, self.clock, catalog))
        if self._providers is None:
            providers.update(build_cloud_providers(settings, self.clock, catalog))
        for provider in providers.values():
            if isinstance(provider, OfferRefresher):
                await provider.refresh()  # offers read from the lab's own systems
        market = LiveMarket(catalog, providers)
        # docker images run on this host only under an engine that answers: asked in the
        # background (a dead engine's client can take 15 s), awaited only by docker submits
        engine_probe = (
            probe_in_background(asyncio.get_running_loop(), self._engine_probe)
            if "local" in providers
            else None
        )
        if engine_probe is not None:
            engine_probe.add_done_callback(functools.partial(_engine_known, market))
        market.engine_probe = engine_probe
        metrics = Metrics(
            self.store,
            bus,
            credits=lambda conn: credits_view(conn, self.clock.now()),
            lag=LoopLagMonitor(interval=settings.loop_lag_interval_seconds),
        )
        metrics.instrument(providers)
        self.metrics = metrics
        market.prefer_regions(settings.placement.home_regions, settings.placement.home_countries)
        data_dirs = [d for d in (settings.catalog_dir,) if d is not None] + candidate_dirs()
        scheduler = JobScheduler(
            store=self.store,
            bus=bus,
            clock=self.clock,
            settings=settings,
            providers=providers,
            runner=runner,
            market=market,
            data=locator_for(settings.data, data_dirs, self.clock),
        )
        self.scheduler = scheduler
        quotas = build_quotas(settings)
        world = PlanWorld(
            db_path=self.store.path or settings.state_dir / "skyd.db",
            catalog_dir=settings.catalog_dir,
            providers=provider_shapes(providers, catalog.clouds),
            limits=SolverLimits(time_limit_seconds=settings.solver_time_limit_seconds),
            changeover_hours=settings.recovery.changeover_hours,
            checkpoint_sync_s=settings.cloud_ssh.checkpoint_sync_s,
            home_regions=tuple(settings.placement.home_regions),
            home_countries=tuple(settings.placement.home_countries),
            data=settings.data if isinstance(scheduler.data, DataLocator) else None,
            data_dirs=tuple(data_dirs),
        )
        # the planner's process prices moves with the changeover its PlanWorld carries
        child = ChildPlanner(
            world,
            container_clouds=lambda: market.container_clouds,
            data=scheduler.data if isinstance(scheduler.data, DataLocator) else None,
        )
        planner = Planner(
            store=self.store,
            bus=bus,
            clock=self.clock,
            decide=scheduler.decide,
            context=scheduler.placement_context,
            quotas=lambda: quotas,
            pools=lambda: optimizer_pools(accountant),
            budgets=lambda: optimizer_budgets(accountant),
            time_limit_seconds=settings.solver_time_limit_seconds,
            offer_of=lambda placement: market.catalog.offer_by_key(str(placement.get("offer_key"))),
            backend=child,
        )

        def offers_changed(shapes: dict[str, ProviderShape]) -> None:
            # the planner's process builds its market from the world it was started with
            child.new_world(dataclasses.replace(world, providers=shapes))
            bus.changed.set()  # jobs waiting for a place may have one now

        offer_refresh = OfferRefresh(
            providers,
            market,
            interval_seconds=settings.market.offers_refresh_seconds,
            seen=lambda: provider_shapes(providers, catalog.clouds),
            on_change=offers_changed,
        )
        self.offer_refresh = offer_refresh
        scheduler.planner = planner
        clusters = ClusterService(
            store=self.store,
            bus=bus,
            clock=self.clock,
            providers=providers,
            placer=scheduler.placer,
            cancel_job=scheduler.cancel,
            activity=LocalSessionProbe(),
            gpu=NvidiaSmiProbe(),
            placement_context=scheduler.placement_context,
        )
        scheduler.clusters = clusters
        accountant = Accountant(
            store=self.store,
            bus=bus,
            clock=self.clock,
            settings=settings.accounting,
            prices=MarketPrices(settings.accounting.stopped_hourly_micros),
        )
        scheduler.accountant = accountant
        metrics.count(
            "skyd_planner_passes",
            "Re-optimization passes of the waiting queue",
            lambda: planner.passes,
        )
        metrics.count(
            "skyd_planner_global_solves",
            "Passes that solved the global (coupled) model",
            lambda: planner.global_solves,
        )
        metrics.count("skyd_accrual_passes", "Accrual passes committed", lambda: accountant.passes)
        clusters.budgets = accountant
        # before the API takes submits: a job naming no project charges the default one
        accountant.ensure_default_project()
        ssh = providers.get("ssh")
        if ssh is not None or any(c in providers for c in CLOUDS_OVER_SSH):
            from skyd.providers.ssh import SshConnections
            from skyd.runner.ssh import SshRunner

            connections = getattr(ssh, "connections", None) or SshConnections()
            # checkpoints pulled out of a cloud are charged at the egress table placement
            # prices data with (the internet rate: the daemon host is in no cloud)
            table = (
                scheduler.data.table
                if isinstance(scheduler.data, DataLocator)
                else find_egress_table(data_dirs)
            )
            scheduler.ssh_runner = SshRunner(
                connections,
                checkpoint_sync_s=settings.cloud_ssh.checkpoint_sync_s,
                checkpoint_sync_max_s=settings.cloud_ssh.checkpoint_sync_max_s,
                write_back_s=settings.local.cancel_write_back_seconds,
                meter=TransferCharges(store=self.store, clock=self.clock, table=table),
                pricing=PullPricing(
                    store=self.store,
                    table=table,
                    signals=market.signals,
                    histories=scheduler.availability,
                    clock=self.clock,
                ),
            )
        # bucket data jobs move is charged at the table placement prices it with
        locator = scheduler.data if isinstance(scheduler.data, DataLocator) else None
        scheduler.attempts.bucket_meter = BucketCharges(
            store=self.store,
            clock=self.clock,
            table=locator.table if locator is not None else find_egress_table(data_dirs),
            locator=locator,
        ).charge_job
        poller = MarketPoller(
            store=self.store,
            bus=bus,
            clock=self.clock,
            market=market,
            sources=build_market_sources(settings, market, providers, self.clock),
        )
        scheduler.observe = poller.apply
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.request_stop)
        report = await scheduler.reconcile_now()  # before acting: adopt, don't relaunch
        log.info(
            "reconciled with providers",
            extra={
                "adopted": report.adopted,
                "gone": report.gone,
                "orphans": len(report.orphans),
                "errors": report.errors,
            },
        )
        self.web_app = build_app(
            scheduler,
            settings.admin_group,
            clusters=clusters,
            accountant=accountant,
            metrics=metrics,
        )
        web_runner = await serve_unix(
            self.web_app,
            settings.socket_path,
            mode=settings.socket_mode,
            group=settings.socket_group,
        )
        runners = [web_runner]
        if settings.metrics_listen:
            try:
                runners.append(await serve_tcp(metrics, settings.metrics_listen))
            except (ValueError, OSError) as exc:  # a bad address, or one already taken
                await web_runner.cleanup()
                raise ConfigError(f"metrics_listen: {exc}") from None
        log.info(
            "skyd ready",
            extra={
                "socket": str(settings.socket_path),
                "state_dir": str(settings.state_dir),
                "providers": sorted(providers),
            },
        )
        # Everything built so far (catalog, market, modules) lives as long as the daemon: keep
        # it out of the cyclic collector's passes, which otherwise stall requests for tens
        # of ms when they walk it.
        gc.collect()
        gc.freeze()
        notify("READY=1")
        self.ready.set()
        try:
            async with asyncio.TaskGroup() as services:
                scheduler_task = services.create_task(scheduler.run(), name="scheduler")
                helpers = [
                    services.create_task(planner.run(), name="planner"),
                    services.create_task(scheduler.reconcile_forever(), name="reconcile"),
                    services.create_task(clusters.run(), name="clusters"),
                    services.create_task(accountant.run(), name="accounting"),
                    services.create_task(self._checkpoints(), name="wal-checkpoints"),
                    services.create_task(poller.run(), name="market-poller"),
                    services.create_task(offer_refresh.run(), name="offer-refresh"),
                    services.create_task(metrics.run(), name="metrics"),
                    # the catalogs' columns (skyd.catalog.table), built off the loop once
                    # rather than by the first placement on it
                    services.create_task(_warm(market), name="catalog-columns"),
                ]
                sim = providers.get("sim")
                if isinstance(sim, SimProvider):

                    def on_trace_change(observations: list[Observation]) -> None:
                        poller.apply(observations)
                        # a preemption is acted on now, not at the next tick: the pass this
                        # wakes must describe the instances again, not reuse the tick's states
                        scheduler.attempts.states.expire()
                        bus.changed.set()

                    helpers.append(
                        services.create_task(sim.watch(on_trace_change), name="sim-market")
                    )
                await self.stop_requested.wait()
                if self._stop_at is None:  # stopped by setting the event directly
                    self._stop_at = loop.time()
                notify("STOPPING=1")
                log.info(
                    "stopping: no new requests; finishing in-flight transitions",
                    extra={"budget_seconds": settings.shutdown_budget_seconds},
                )
                for site_runner in runners:
                    await site_runner.cleanup()  # stop accepting first
                await scheduler.drain(self._budget_left())
                scheduler_task.cancel()
                for task in helpers:
                    task.cancel()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
            await runner.aclose()
            for provider in providers.values():
                await provider.aclose()
            metrics.close()
            self.store.close()
            with contextlib.suppress(FileNotFoundError):
                settings.socket_path.unlink()
            os.close(socket_lock)
        log.info("skyd stopped")
        return 0
