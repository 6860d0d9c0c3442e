"""Load a spot-trace directory (meta.json, per-zone CSVs, optional price JSON) as arrays."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from skyd.errors import TraceError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, eq=False)
class ZoneTrace:
    """One zone of a trace set: availability and spot price per row, on-demand price."""

    zone: str
    region: str
    available: BoolArray
    spot_price: FloatArray
    on_demand_price: float


@dataclass(frozen=True, slots=True, eq=False)
class TraceSet:
    """Spot traces of one instance type in several zones sharing the same probe timestamps.

    `timestamps` are Unix seconds (UTC), oldest first; row `i` of every zone holds from
    `timestamps[i]` until `timestamps[i + 1]`.
    """

    name: str
    cloud: str
    instance_type: str
    accelerator: str
    timestamps: FloatArray
    zones: Mapping[str, ZoneTrace]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tick_seconds(self) -> float:
        """The nominal probe interval: the median gap between rows."""
        if len(self.timestamps) < 2:
            return 0.0
        return float(np.median(np.diff(self.timestamps)))

    @property
    def zone_names(self) -> list[str]:
        return list(self.zones)

    def __len__(self) -> int:
        return len(self.timestamps)

    def zone(self, name: str) -> ZoneTrace:
        try:
            return self.zones[name]
        except KeyError:
            raise TraceError(
                f"trace set {self.name!r} has no zone {name!r}; "
                f"its zones are: {', '.join(self.zones)}"
            ) from None

    def select(self, names: Iterable[str]) -> TraceSet:
        """The same set restricted to `names`, in that order (unknown names are an error)."""
        chosen = {n: self.zone(n) for n in names}
        if not chosen:
            raise TraceError("select at least one zone of the trace set")
        return TraceSet(
            self.name,
            self.cloud,
            self.instance_type,
            self.accelerator,
            self.timestamps,
            chosen,
            self.meta,
        )

    def rows(self, start: int, stop: int) -> TraceSet:
        """A cut of rows `[start, stop)` of every zone."""
        if not 0 <= start < stop <= len(self):
            raise TraceError(f"row range [{start}, {stop}) is outside 0..{len(self)}")
        cut = {
            n: ZoneTrace(
                z.zone,
                z.region,
                z.available[start:stop],
                z.spot_price[start:stop],
                z.on_demand_price,
            )
            for n, z in self.zones.items()
        }
        return TraceSet(
            self.name,
            self.cloud,
            self.instance_type,
            self.accelerator,
            self.timestamps[start:stop],
            cut,
            self.meta,
        )


def shipped_trace_dir() -> Path:
    """The small trace set shipped in the repository (catalogs/traces/aws-v100-3zone)."""
    return Path(__file__).resolve().parents[2] / "catalogs" / "traces" / "aws-v100-3zone"


def _positive_price(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceError(f"{where} must be a number of dollars per hour, got {value!r}")
    price = float(value)
    if not math.isfinite(price) or price < 0:
        raise TraceError(f"{where} must be a finite price >= 0, got {value!r}")
    return price


def _read_meta(directory: Path) -> dict[str, Any]:
    meta_path = directory / "meta.json"
    if not directory.is_dir():
        raise TraceError(f"trace directory {str(directory)!r} does not exist")
    if not meta_path.is_file():
        raise TraceError(
            f"{str(meta_path)!r} is missing: a trace directory needs a meta.json "
            "(see the trace-directory format)"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TraceError(f"{str(meta_path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise TraceError(f"{str(meta_path)!r} must hold a JSON object")
    zones = meta.get("zones")
    if not isinstance(zones, dict) or not zones:
        raise TraceError(f"{str(meta_path)!r}: 'zones' must be a non-empty object {{zone: {{…}}}}")
    return meta


def _read_availability(path: Path) -> tuple[FloatArray, BoolArray]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TraceError(f"availability file {str(path)!r} named in meta.json is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"cannot read {str(path)!r}: {exc}") from exc
    if not lines or lines[0].strip().replace(" ", "") != "date,availability":
        raise TraceError(f"{str(path)!r}: the header must be 'date,availability'")
    body = [ln for ln in lines[1:] if ln.strip()]
    if not body:
        raise TraceError(f"{str(path)!r} has a header but no rows")
    dates: list[str] = []
    flags: list[str] = []
    for number, line in enumerate(body, start=2):
        date, sep, flag = line.rpartition(",")
        if not sep:
            raise TraceError(f"{str(path)!r} line {number}: expected 'date,availability'")
        dates.append(date.strip().replace(" ", "T"))
        flags.append(flag.strip())
    bad = next((i for i, f in enumerate(flags) if f not in ("0", "1")), None)
    if bad is not None:
        raise TraceError(
            f"{str(path)!r} line {bad + 2}: availability must be 0 or 1, got {flags[bad]!r}"
        )
    try:
        stamps = np.array(dates, dtype="datetime64[s]")
    except ValueError as exc:
        raise TraceError(f"{str(path)!r}: a date is not 'YYYY-MM-DD HH:MM:SS' ({exc})") from exc
    seconds = stamps.astype(np.int64).astype(np.float64)
    if len(seconds) > 1 and not bool(np.all(np.diff(seconds) > 0)):
        row = int(np.argmin(np.diff(seconds) > 0)) + 3
        raise TraceError(f"{str(path)!r} line {row}: dates must be strictly increasing")
    return seconds, np.array(flags) == "1"


def _read_price_series(directory: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    name = meta.get("spot_prices_file")
    if name is None:
        return {}
    path = directory / str(name)
    try:
        series = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TraceError(f"spot_prices_file {str(path)!r} named in meta.json is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TraceError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(series, dict):
        raise TraceError(f"{str(path)!r} must hold a JSON object {{key: [price, …]}}")
    return series


def load_trace_set(directory: str | Path) -> TraceSet:
    """Read a trace directory; every inconsistency raises TraceError naming the file and fix."""
    root = Path(directory)
    meta = _read_meta(root)
    prices = _read_price_series(root, meta)
    default_od = meta.get("on_demand_price")
    timestamps: FloatArray | None = None
    zones: dict[str, ZoneTrace] = {}
    for zone, spec in meta["zones"].items():
        where = f"meta.json zones.{zone}"
        if not isinstance(spec, dict):
            raise TraceError(f"{where} must be an object")
        region = spec.get("region")
        if not isinstance(region, str) or not region:
            raise TraceError(f"{where}.region must name the zone's region")
        file_name = spec.get("availability_file")
        if not isinstance(file_name, str) or not file_name:
            raise TraceError(f"{where}.availability_file must name the zone's CSV file")
        stamps, available = _read_availability(root / file_name)
        if timestamps is None:
            timestamps = stamps
        elif len(stamps) != len(timestamps) or not np.array_equal(stamps, timestamps):
            raise TraceError(
                f"{file_name!r}: all zones of a set must share the same timestamps "
                f"({len(stamps)} rows here, {len(timestamps)} in the first zone)"
            )
        od_raw = spec.get("on_demand_price", default_od)
        if od_raw is None:
            raise TraceError(f"{where}: no on_demand_price (set it on the zone or the set)")
        on_demand = _positive_price(od_raw, f"{where}.on_demand_price")
        key = spec.get("spot_prices_key")
        if key is not None:
            if key not in prices:
                raise TraceError(
                    f"{where}.spot_prices_key {key!r} is not a key of the spot_prices_file"
                )
            try:
                spot = np.asarray(prices[key], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TraceError(f"spot prices {key!r} must be a list of numbers") from exc
            if spot.ndim != 1 or len(spot) < len(stamps):
                raise TraceError(
                    f"spot prices {key!r} have {spot.size} entries, "
                    f"fewer than the {len(stamps)} rows of {file_name!r}"
                )
            spot = spot[: len(stamps)]
            if not bool(np.all(np.isfinite(spot))) or bool(np.any(spot < 0)):
                raise TraceError(f"spot prices {key!r} must be finite and >= 0")
        elif "spot_price" in spec:
            constant = _positive_price(spec["spot_price"], f"{where}.spot_price")
            spot = np.full(len(stamps), constant)
        else:
            raise TraceError(f"{where}: give either spot_prices_key or a constant spot_price")
        zones[zone] = ZoneTrace(zone, region, available, spot, on_demand)
    assert timestamps is not None
    return TraceSet(
        name=str(meta.get("name", root.name)),
        cloud=str(meta.get("cloud", "")),
        instance_type=str(meta.get("instance_type", "")),
        accelerator=str(meta.get("accelerator", "")),
        timestamps=timestamps,
        zones=zones,
        meta=meta,
    )
