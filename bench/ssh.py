"""Benchmark: control-plane cost of the ssh provider and runner against in-process SSH machines.

    python -m bench.ssh [--launches 100] [--instances 1000] [--json]

Launch: median of `SshProvider.launch()` for new tokens, next to the median of the one
probe round trip it makes; the difference is skyd's own overhead (target <= 50 ms).
Retried launch: the same token again (no remote call at all). Reconcile: `describe()`
of every skyd-tagged instance with N claims held over two hosts (target <= 2 s).
Status poll: one `SshRunner.status()` of a running single-node attempt (one remote
command plus one SFTP read). Loopback SSH to an asyncssh fake: real key exchange,
channels and SFTP, no network latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from skyd.clock import VirtualClock
from skyd.model import LaunchRequest, RunPhase
from skyd.providers.ssh import SshConnections, SshHost, SshProvider, SshProviderConfig
from skyd.providers.ssh.capacity import target_of
from skyd.providers.ssh.layout import probe_command
from skyd.runner.process import RunCommand
from skyd.runner.ssh import SshRunner
from skyd.runner.ssh_node import ssh_nodes
from skyd.testing.ssh_server import FakeSshServer


def _ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


async def run(launches: int, instances: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fakes = [FakeSshServer(root / f"box-{i}", name=f"box-{i}") for i in range(2)]
        for fake in fakes:
            await fake.start()
        hosts = [
            SshHost(
                name=f.name,
                host=f.host,
                port=f.port,
                user=f.user,
                key_path=f.client_key_path,
                known_hosts=f.known_hosts_path,
                max_jobs=instances + launches,
                python=sys.executable,
            )
            for f in fakes
        ]
        connections = SshConnections()
        provider = SshProvider(
            SshProviderConfig(hosts=hosts, state_dir=root / "state"), VirtualClock(), connections
        )
        offer = provider.offers()[0]
        try:
            probe, launch, relaunch = [], [], []
            for i in range(launches):
                t0 = time.perf_counter()
                await connections.run(
                    target_of(hosts[0]), probe_command(hosts[0].remote_root), timeout_s=10
                )
                probe.append(time.perf_counter() - t0)
                request = LaunchRequest(
                    job_id=i, attempt=1, client_token=f"bench-{i}", offer=offer, spot=False
                )
                t0 = time.perf_counter()
                await provider.launch(request)
                launch.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await provider.launch(request)
                relaunch.append(time.perf_counter() - t0)
            for i in range(launches, instances):
                request = LaunchRequest(
                    job_id=i,
                    attempt=1,
                    client_token=f"bench-{i}",
                    offer=provider.offers()[i % 2],
                    spot=False,
                )
                await provider.launch(request)
            reconcile = []
            for _ in range(5):
                t0 = time.perf_counter()
                states = await provider.describe()
                reconcile.append(time.perf_counter() - t0)
            assert len(states) == instances

            runner = SshRunner(connections)
            log = root / "job.log"
            log.touch()
            attempt = root / "attempt"
            iid = next(iter(states))
            command = RunCommand(
                setup=None, run="echo tick; sleep 60", cwd=root, env={}, log_path=log
            )
            await runner.start(attempt, command, ssh_nodes(provider, [iid]))
            polls = []
            for _ in range(20):
                t0 = time.perf_counter()
                status = await runner.status(attempt)
                polls.append(time.perf_counter() - t0)
            assert status.phase in (RunPhase.SETUP, RunPhase.RUN)
            await runner.kill(attempt, 1.0)
        finally:
            await provider.aclose()
            await connections.aclose()
            for fake in fakes:
                await fake.aclose()
    launch_ms, probe_ms = _ms(launch), _ms(probe)
    return {
        "launch_median_ms": launch_ms,
        "probe_round_trip_median_ms": probe_ms,
        "launch_overhead_ms": round(launch_ms - probe_ms, 2),
        "retried_launch_median_ms": _ms(relaunch),
        "reconcile_instances": instances,
        "reconcile_median_ms": _ms(reconcile),
        "status_poll_median_ms": _ms(polls),
        "launch_target_ms": 50,
        "reconcile_target_ms": 2000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1000)
    # one JSON object on stdout like every benchmark (it used to take a file to write)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.launches < 1:
        parser.error(f"--launches {args.launches}: at least 1")
    if args.instances < args.launches:
        parser.error("--instances must be >= --launches (the launched ones are counted in)")
    result = asyncio.run(run(args.launches, args.instances))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:30} {value}")


if __name__ == "__main__":
    main()
