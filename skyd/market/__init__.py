"""Market data: recorded spot traces and their replay on the injected clock."""

from skyd.market.replay import MarketChange, TraceReplay
from skyd.market.traces import TraceSet, ZoneTrace, load_trace_set, shipped_trace_dir

__all__ = [
    "MarketChange",
    "TraceReplay",
    "TraceSet",
    "ZoneTrace",
    "load_trace_set",
    "shipped_trace_dir",
]
