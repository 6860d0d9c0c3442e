"""SkyPilot's `inputs` / `outputs`: `{BUCKET_URL: SIZE_GB}`, the data a task reads and writes,
used by data-aware placement (skyd.optimizer.egress) to price moving it."""

from __future__ import annotations

import math
from collections.abc import Mapping

from skyd.spec.fields import Problems
from skyd.spec.storage import is_bucket_url, parse_bucket_url
from skyd.spec.values import describe

# 1 PB: a larger figure is a unit mistake (SkyPilot's sizes are in GB)
MAX_GIGABYTES = 1_000_000.0
HINT = "write {s3://bucket/path: SIZE_GB}, e.g. {gs://my-data/train: 2000} for 2 TB"


def data_sizes(problems: Problems, field: str, value: object) -> dict[str, float]:
    """`inputs:`/`outputs:` → bucket URL → gigabytes (every problem names the entry)."""
    if not isinstance(value, Mapping) or not value:
        raise problems.at(
            field, f"{describe(value)} is not a mapping of bucket URL to size; {HINT}"
        )
    sizes: dict[str, float] = {}
    for url, size in value.items():
        path = f"{field}.{url}"
        if not isinstance(url, str) or not is_bucket_url(url):
            raise problems.at(
                path,
                f"{describe(url)} is not a bucket URL (s3://, gs://, r2://, az:// or "
                f"https://ACCOUNT.blob.core.windows.net/); {HINT}",
                of_key=True,
            )
        try:
            parse_bucket_url(url)
        except ValueError as exc:
            raise problems.at(path, str(exc), of_key=True) from None
        if isinstance(size, bool) or not isinstance(size, (int, float)):
            raise problems.at(path, f"{describe(size)} is not a size in GB; {HINT}")
        gigabytes = float(size)
        if not math.isfinite(gigabytes) or not 0 <= gigabytes <= MAX_GIGABYTES:
            raise problems.at(
                path, f"{size!r} GB is out of range; give 0 to {MAX_GIGABYTES:.0f} GB"
            )
        sizes[url.strip()] = gigabytes
    return sizes
