"""The `ssh` provider: a pool of lab machines; an instance is a job slot (plus GPUs) on one host.

States: a held slot is RUNNING while its host answers a cheap probe, STOPPED after
`stop()` (its processes killed, the slot kept). A host that fails `down_after_failures`
probes in a row is marked down and every slot on it reports PREEMPTED — the core treats
it like a spot preemption and recovers the job elsewhere; the slot stays PREEMPTED until
terminated, even if the host returns. Released (or never held) slots report TERMINATED.

Capacity: a launch of `num_nodes` puts rank 0 on the offer's host and the other ranks on
other hosts at least as big (one per host before any host takes two), each node holding
one of its host's `max_jobs` slots, the offer's GPUs and the CPUs and memory its task asks
for (skyd.providers.ssh.capacity); holds are files under
`state_dir/claims`, so a restarted daemon keeps the counts. A launch probes its hosts
first (unreachable → TransientError for its zone, refused key → AuthError for the pool,
`REMOTE_ROOT/drain` present → CapacityError).
Terminate kills the instance's remote process group through the remote shim; if the host
does not answer, the kill is kept under `state_dir/pending-kills` and done when it does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

from skyd.clock import Clock
from skyd.errors import AuthError, CapacityError, ProviderError, TransientError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer
from skyd.providers.base import launch_tags
from skyd.providers.ssh.capacity import (
    SSH_CLOUD,
    SSH_REGION,
    HostUsage,
    host_offers,
    nodes_fit,
    target_of,
)
from skyd.providers.ssh.claims import Claim, ClaimStore, PendingKills, instance_id_for
from skyd.providers.ssh.config import SshHost, SshProviderConfig
from skyd.providers.ssh.connection import CommandResult, SshConnections, SshTarget
from skyd.providers.ssh.layout import kill_command, probe_command, run_dir

log = logging.getLogger(__name__)


class SshProvider:
    name = SSH_CLOUD

    def __init__(
        self,
        config: SshProviderConfig,
        clock: Clock,
        connections: SshConnections | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._claims = ClaimStore(config.state_dir / "claims")
        self._pending_kills = PendingKills(config.state_dir / "pending-kills")
        self.connections = connections or SshConnections(connect_timeout_s=config.probe_timeout_s)
        self._owns_connections = connections is None
        self._failures: dict[str, int] = {}
        self._offers = [o for h in config.hosts for o in host_offers(h)]

    # -- what is offered and held ------------------------------------------------

    def offers(self) -> Sequence[Offer]:
        return list(self._offers)

    def max_nodes(self, offer: Offer) -> int | None:
        """The largest gang of `offer`: a node on each host that can take one (the offer's
        host and every host at least as big), several per host as their slots and GPUs
        allow."""
        head = self.config.host(offer.zone)
        if head is None:
            return 0
        return sum(nodes_fit(h, offer, h.max_jobs, {}) for h in self._gang_hosts(head, offer))

    def _gang_hosts(self, head: SshHost, offer: Offer) -> list[SshHost]:
        """Hosts a node of `offer` may run on: its own host first, then, in the pool's
        order, every other host with as many CPUs and memory and the offer's GPUs."""
        fits = [
            h
            for h in self.config.hosts
            if h.name != head.name
            and h.cpus >= head.cpus
            and h.memory_gib >= head.memory_gib
            and h.gpus.get(offer.accelerator_name, 0) >= offer.accelerator_count
        ]
        return [head, *fits]

    def _place_gang(self, head: SshHost, request: LaunchRequest) -> list[SshHost]:
        """The host of each rank: rank 0 on the offer's host, then one node per other host
        before any host takes a second (nodes of a gang are meant to be machines).
        Raises CapacityError when the pool cannot hold every node now."""
        hosts = self._gang_hosts(head, request.offer)
        if len(hosts) == 1:
            self._check_capacity(head, request)  # all on one host: say what is short there
            return [head] * request.num_nodes
        usage = self.usage()
        free = {
            h.name: 0
            if usage[h.name].down
            else nodes_fit(
                h,
                request.offer,
                h.max_jobs - usage[h.name].jobs,
                usage[h.name].gpus,
                request,
                usage[h.name],
            )
            for h in hosts
        }
        if free[head.name] < 1:
            self._check_capacity(head, replace(request, num_nodes=1))
        ranks: list[SshHost] = []
        while len(ranks) < request.num_nodes:
            room = [h for h in hosts if free[h.name] > 0]
            if not room:
                raise CapacityError(
                    f"the pool holds {len(ranks)} of {request.num_nodes} nodes like "
                    f"{request.offer.instance_type} now (hosts: "
                    f"{', '.join(h.name for h in hosts)})",
                    scope=self._zone_scope(head),
                )
            for host in room[: request.num_nodes - len(ranks)]:
                ranks.append(host)
                free[host.name] -= 1
        return ranks

    def usage(self) -> dict[str, HostUsage]:
        held: dict[str, list[Claim]] = {h.name: [] for h in self.config.hosts}
        for claim in self._claims.all():
            held.setdefault(claim.host, []).append(claim)
        result = {}
        for host in self.config.hosts:
            gpus: dict[str, int] = {}
            for claim in held[host.name]:
                if claim.gpu_count:
                    gpus[claim.gpu_name] = gpus.get(claim.gpu_name, 0) + claim.gpu_count
            result[host.name] = HostUsage(
                host=host.name,
                jobs=len(held[host.name]),
                max_jobs=host.max_jobs,
                gpus=gpus,
                gpus_total=dict(host.gpus),
                down=self._failures.get(host.name, 0) >= self.config.down_after_failures,
                cpus=sum(c.cpus for c in held[host.name]),
                memory_gib=sum(c.memory_gib for c in held[host.name]),
            )
        return result

    def target(self, instance_id: str) -> SshTarget:
        """How to log in to the host an instance lives on (for the runner)."""
        return target_of(self._host_of(instance_id))

    def host_config(self, instance_id: str) -> SshHost:
        return self._host_of(instance_id)

    def _host_of(self, instance_id: str) -> SshHost:
        claim = self._claims.get(instance_id)
        host = self.config.host(claim.host) if claim else None
        if host is None:
            raise ProviderError(f"{instance_id} is not a held ssh instance", scope=None)
        return host

    # -- launch ------------------------------------------------------------------

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        existing = self._claims.with_token(request.client_token)
        if existing:
            return [self._instance(c) for c in existing]
        offer = request.offer
        host = self.config.host(offer.zone)
        if offer.cloud != SSH_CLOUD or host is None:
            raise ProviderError(
                f"{offer.key} is not an offer of the ssh pool (hosts: "
                f"{', '.join(h.name for h in self.config.hosts) or 'none configured'})",
                scope=offer.key,
            )
        if offer.accelerator_count and host.gpus.get(offer.accelerator_name, 0) < (
            offer.accelerator_count
        ):
            raise CapacityError(
                f"host {host.name} has no {offer.accelerator_count}x {offer.accelerator_name}",
                scope=self._zone_scope(host),
            )
        for name in dict.fromkeys(h.name for h in self._place_gang(host, request)):
            await self._probe_for_launch(self.config.host(name) or host)
        # From here to the writes nothing awaits, so two launches cannot both take the last slot.
        raced = self._claims.with_token(request.client_token)
        if raced:  # the same token launched while we probed
            return [self._instance(c) for c in raced]
        ranks = self._place_gang(host, request)
        now = self._clock.now()
        tags = launch_tags(request)
        claims = [
            Claim(
                instance_id=instance_id_for(on.name, request.client_token, rank),
                host=on.name,
                token=request.client_token,
                rank=rank,
                instance_type=offer.instance_type,
                spot=request.spot,
                gpu_name=offer.accelerator_name if offer.accelerator_count else "",
                gpu_count=offer.accelerator_count,
                launched_at=now,
                tags=tags,
                cpus=request.cpus or 0.0,
                memory_gib=request.memory_gib or 0.0,
            )
            for rank, on in enumerate(ranks)
        ]
        for claim in claims:
            self._claims.put(claim)
        return [self._instance(c) for c in claims]

    def _check_capacity(self, host: SshHost, request: LaunchRequest) -> None:
        usage = self.usage()[host.name]
        nodes = request.num_nodes
        if usage.jobs + nodes > host.max_jobs:
            raise CapacityError(
                f"host {host.name} runs {usage.jobs} of {host.max_jobs} jobs; "
                f"{nodes} more do not fit",
                scope=self._zone_scope(host),
            )
        for asked, size, held, what in (
            (request.cpus, host.cpus, usage.cpus, "CPUs"),
            (request.memory_gib, host.memory_gib, usage.memory_gib, "GiB of memory"),
        ):
            if asked and held + asked * nodes > size:
                raise CapacityError(
                    f"host {host.name} has {size - held:g} of {size:g} {what} free; "
                    f"{asked * nodes:g} asked",
                    scope=self._zone_scope(host),
                )
        gpu, count = request.offer.accelerator_name, request.offer.accelerator_count
        if count:
            free = host.gpus.get(gpu, 0) - usage.gpus.get(gpu, 0)
            if free < count * nodes:
                raise CapacityError(
                    f"host {host.name} has {free} free {gpu}; {count * nodes} needed",
                    scope=self._zone_scope(host),
                )

    async def _run_probe(self, host: SshHost) -> CommandResult:
        """The probe script (skyd.providers.ssh.layout.probe_command) run on `host`."""
        return await self.connections.run(
            target_of(host), probe_command(host.remote_root), timeout_s=self.config.probe_timeout_s
        )

    async def _probe_for_launch(self, host: SshHost) -> None:
        try:
            result = await self._run_probe(host)
        except ProviderError as exc:
            raise self._scoped(exc, host) from exc
        if "skyd-probe drained" in result.stdout:
            raise CapacityError(
                f"host {host.name} is drained (remove {host.remote_root}/drain on it to "
                "accept jobs again)",
                scope=self._zone_scope(host),
            )
        if result.exit_status != 0 or "skyd-probe ok" not in result.stdout:
            raise TransientError(
                f"host {host.name} answered the probe with exit {result.exit_status}: "
                f"{(result.stderr or result.stdout).strip()[:200]}",
                scope=self._zone_scope(host),
            )
        self._failures[host.name] = 0
        await self._settle_pending_kills(host)

    def _zone_scope(self, host: SshHost) -> str:
        return f"{SSH_CLOUD}/{SSH_REGION}/{host.name}"

    def _scoped(self, exc: ProviderError, host: SshHost) -> ProviderError:
        # A refused key is usually the pool's shared key: block the cloud, as the core expects.
        if isinstance(exc, AuthError):
            return AuthError(exc.message, scope=SSH_CLOUD)
        if isinstance(exc, TransientError):
            return TransientError(exc.message, scope=self._zone_scope(host))
        return type(exc)(exc.message, scope=self._zone_scope(host))

    def _instance(self, claim: Claim) -> Instance:
        host = self.config.host(claim.host)
        return Instance(
            instance_id=claim.instance_id,
            provider=self.name,
            cloud=SSH_CLOUD,
            region=SSH_REGION,
            zone=claim.host,
            instance_type=claim.instance_type,
            spot=claim.spot,
            state=self._claim_state(claim),
            tags=dict(claim.tags),
            public_ip=host.host if host else None,
            private_ip=host.host if host else None,
            launched_at=claim.launched_at,
        )

    # -- describe ------------------------------------------------------------------

    def _claim_state(self, claim: Claim) -> InstanceState:
        if claim.lost:
            return InstanceState.PREEMPTED
        return InstanceState.STOPPED if claim.stopped else InstanceState.RUNNING

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        if instance_ids is not None:
            found = {iid: self._claims.get(iid) for iid in instance_ids}
            claims = [c for c in found.values() if c is not None]
        else:
            claims = [
                c
                for c in self._claims.all()
                if tags is None or all(c.tags.get(k) == v for k, v in tags.items())
            ]
        live_hosts = {c.host for c in claims if not c.lost and not c.stopped}
        await self._check_hosts(live_hosts | self._pending_kills.hosts())
        result: dict[str, InstanceState] = {}
        if instance_ids is not None:
            for iid in instance_ids:
                claim = self._claims.get(iid)
                result[iid] = self._claim_state(claim) if claim else InstanceState.TERMINATED
            return result
        for claim in claims:
            current = self._claims.get(claim.instance_id)
            if current is not None:
                result[claim.instance_id] = self._claim_state(current)
        return result

    async def host_up(self, name: str) -> bool:
        """Probe one host now; counts towards marking it down like a describe does."""
        await self._check_hosts({name})
        return self._failures.get(name, 0) == 0

    async def _check_hosts(self, names: set[str]) -> None:
        hosts = [h for h in self.config.hosts if h.name in names]
        answers = await asyncio.gather(*(self._probe(h) for h in hosts))
        for host, error in zip(hosts, answers, strict=True):
            if error is None:
                self._failures[host.name] = 0
                await self._settle_pending_kills(host)
                continue
            failures = self._failures.get(host.name, 0) + 1
            self._failures[host.name] = failures
            log.warning("ssh host %s failed probe %d: %s", host.name, failures, error)
            if failures >= self.config.down_after_failures:
                self._mark_down(host)

    async def _probe(self, host: SshHost) -> ProviderError | None:
        try:
            result = await self._run_probe(host)
        except ProviderError as exc:
            return exc
        if result.exit_status != 0:
            return TransientError(f"probe exited with {result.exit_status}")
        return None

    def _mark_down(self, host: SshHost) -> None:
        for claim in self._claims.all():
            if claim.host == host.name and not claim.lost and not claim.stopped:
                log.warning(
                    "ssh host %s is down: %s reported PREEMPTED", host.name, claim.instance_id
                )
                self._claims.update(claim, lost=True)

    # -- stop / start / terminate ----------------------------------------------------

    async def stop(self, instance_ids: Sequence[str]) -> None:
        """Kill the instance's processes but keep its slot (a stopped VM keeps its disk)."""
        for iid in instance_ids:
            claim = self._require(iid)
            if claim.stopped:
                continue
            await self._kill_remote(claim, self.config.kill_grace_s, best_effort=False)
            self._claims.update(claim, stopped=True)

    async def start(self, instance_ids: Sequence[str]) -> None:
        for iid in instance_ids:
            claim = self._require(iid)
            host = self.config.host(claim.host)
            if host is None:
                raise ProviderError(f"host {claim.host} of {iid} is no longer configured")
            if claim.lost:
                raise ProviderError(
                    f"{iid} was lost when host {claim.host} went down; terminate it",
                    scope=self._zone_scope(host),
                )
            await self._probe_for_launch(host)
            self._claims.update(claim, stopped=False)

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        """Kill each instance's remote process group and release its slot. A host that is
        down is probed once per call; its kills are kept and done when it answers again."""
        unreachable: dict[str, bool] = {}
        for iid in instance_ids:
            claim = self._claims.get(iid)
            if claim is None:
                continue
            host = self.config.host(claim.host)
            killed = host is None
            if host is not None:
                if host.name not in unreachable:
                    unreachable[host.name] = self._down(host) and await self._still_down(host)
                if not unreachable[host.name]:
                    killed = await self._kill_remote(
                        claim, self.config.kill_grace_s, best_effort=True
                    )
                    unreachable[host.name] = not killed
            if not killed:
                self._pending_kills.add(claim.host, iid)
            self._claims.remove(iid)

    def _down(self, host: SshHost) -> bool:
        return self._failures.get(host.name, 0) >= self.config.down_after_failures

    async def _still_down(self, host: SshHost) -> bool:
        return await self._probe(host) is not None

    async def _settle_pending_kills(self, host: SshHost) -> None:
        for iid in self._pending_kills.for_host(host.name):
            directory = run_dir(host.remote_root, iid)
            command = kill_command(host.python, directory, self.config.kill_grace_s)
            try:
                await self.connections.run(
                    target_of(host),
                    command,
                    timeout_s=self.config.probe_timeout_s + self.config.kill_grace_s,
                )
            except ProviderError as exc:
                log.warning("pending kill of %s on %s failed: %s", iid, host.name, exc)
                return
            self._pending_kills.done(iid)

    def _require(self, instance_id: str) -> Claim:
        claim = self._claims.get(instance_id)
        if claim is None:
            raise ProviderError(f"{instance_id} is not a held ssh instance (terminated?)")
        return claim

    async def _kill_remote(self, claim: Claim, grace_s: float, *, best_effort: bool) -> bool:
        """True when the host answered the kill (whether or not anything was running)."""
        host = self.config.host(claim.host)
        if host is None:
            return True
        command = kill_command(host.python, run_dir(host.remote_root, claim.instance_id), grace_s)
        try:
            result = await self.connections.run(
                target_of(host), command, timeout_s=self.config.probe_timeout_s + grace_s
            )
        except ProviderError as exc:
            if not best_effort:
                raise self._scoped(exc, host) from exc
            # The slot is released anyway; the kill is retried when the host answers again.
            log.warning("could not kill %s on %s yet: %s", claim.instance_id, host.name, exc)
            return False
        if result.exit_status != 0:
            log.warning(
                "killing %s on %s exited %d: %s",
                claim.instance_id,
                host.name,
                result.exit_status,
                result.stderr.strip()[:200],
            )
        return True

    async def aclose(self) -> None:
        if self._owns_connections:
            await self.connections.aclose()
