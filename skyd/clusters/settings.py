"""Knobs of the cluster service (autostop cadence, GPU threshold, launch failover)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    # how often idleness is checked; autostop fires at most this late
    check_seconds: float = 30.0
    # a GPU busier than this (percent) keeps its cluster up even with no job or session
    gpu_busy_percent: float = 10.0
    # offerings tried before a cluster launch gives up
    launch_attempts: int = 5
    # how long a scope that failed a cluster launch is skipped by the next cluster launch
    block_seconds: float = 600.0
