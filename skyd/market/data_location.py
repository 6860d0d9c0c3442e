"""Where a task's data lives and how much of it there is, for data-aware placement.

A bucket's cloud comes from its URL scheme; its region from the cloud (S3 GetBucketLocation
through aioboto3, GCS bucket metadata from a configured JSON API endpoint) or from
`[data] bucket_regions` (the only source for Azure containers: their storage account's
region is an ARM property; R2 needs none: its egress is free); its size from the task's
`inputs`/`outputs` hints, else from listing the bucket (S3, at most `max_listed_objects`
objects: "at least" beyond that).

Lookups run on the event loop as coroutines (`prefetch`) with a timeout and are cached;
placement, which may run in a worker thread, only reads the cache (`footprint`), so it never
waits on the network. A bucket not looked up yet counts at its cloud with no region.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from skyd.clock import Clock
from skyd.config import DataSettings
from skyd.optimizer.egress import STORE_CLOUD, DataFootprint, DataTransfer, EgressTable
from skyd.spec import TaskSpec
from skyd.spec.storage import parse_bucket_url

log = logging.getLogger(__name__)
GB = 1e9  # SkyPilot's sizes are in GB
FAILED_RETRY_SECONDS = 60.0  # a failed lookup is tried again after this long
# a storage account's region is an ARM property (not a Blob API answer): skyd does not call
# ARM for it, and an emulator such as Azurite has no ARM at all
AZURE_NOT_LOOKED_UP = (
    "an Azure storage account's region is an ARM property skyd does not look up; "
    'set [data] bucket_regions = {"az://ACCOUNT" = "REGION"}'
)


@dataclass(frozen=True, slots=True)
class BucketFacts:
    """What skyd learned about one bucket (and prefix): region None = not known;
    gigabytes None = not listed; `complete` False = the listing stopped at the bound."""

    region: str | None
    gigabytes: float | None
    complete: bool = True
    error: str = ""
    at: float = 0.0


def _bucket_key(url: str) -> tuple[str, str | None, str, str]:
    store, bucket, prefix, account = parse_bucket_url(url)
    return store, account, bucket, prefix


def _canonical(url: str) -> str:
    try:
        store, bucket, prefix, account = parse_bucket_url(url)
    except ValueError:
        return url.rstrip("/")
    if store == "azure":
        # az://ACCOUNT alone names the storage account: every container in it
        return "/".join(p for p in (f"az://{account}", bucket, prefix.rstrip("/")) if p)
    scheme = {"gcs": "gs"}.get(store, store)
    return "/".join(p for p in (f"{scheme}://{bucket}", prefix.rstrip("/")) if p)


class DataLocator:
    """The cache of bucket facts and the lookups that fill it."""

    def __init__(self, settings: DataSettings, table: EgressTable, clock: Clock) -> None:
        self.settings = settings
        self.table = table
        self.clock = clock
        self.version = 0  # bumped whenever a lookup adds what placement uses
        self._facts: dict[tuple[str, str | None, str, str], BucketFacts] = {}
        self._inflight: dict[tuple[str, str | None, str, str], asyncio.Task[None]] = {}
        self._footprints: dict[tuple[object, ...], DataFootprint] = {}
        self._session: Any = None

    def snapshot(self) -> tuple[int, dict[tuple[str, str | None, str, str], BucketFacts]]:
        """What placement reads, as of now (for the planner's process to price data)."""
        return self.version, dict(self._facts)

    def restore(
        self, snapshot: tuple[int, dict[tuple[str, str | None, str, str], BucketFacts]]
    ) -> None:
        """Take another locator's `snapshot()` (the planner's process; no lookups here)."""
        self.version, self._facts = snapshot[0], dict(snapshot[1])

    # -- what placement reads (no I/O) ----------------------------------------------------

    @staticmethod
    def wanted(spec: TaskSpec) -> list[tuple[str, float | None, str]]:
        """(url, size hint in GB, "direction:how the size is known") per bucket the task
        reads or writes: its mounts and its `inputs`/`outputs`; a mount also named in `inputs`
        takes that size. A bucket skyd creates and fills from a local `source` is left out
        (its data comes from the submitter's disk, uploaded whatever the placement)."""
        found: dict[tuple[str, str], tuple[str, float | None, str]] = {}
        for url, gigabytes in spec.inputs.items():
            found[(url.rstrip("/"), "in")] = (url, gigabytes, "inputs")
        for mount in spec.storage_mounts.values():
            if mount.owned and mount.source_local is not None:
                continue  # filled from the submitter's disk, not moved between clouds
            if mount.store == "azure" and mount.account is None:
                continue  # a container skyd creates in the job's own storage account: new
            url = mount.url
            if (url.rstrip("/"), "in") not in found:
                found[(url.rstrip("/"), "in")] = (url, None, "bucket listing")
        for url, gigabytes in spec.outputs.items():
            found[(url.rstrip("/"), "out")] = (url, gigabytes, "outputs")
        return [
            (url, size, f"{direction}:{how}") for (_, direction), (url, size, how) in found.items()
        ]

    def footprint(self, spec: TaskSpec) -> DataFootprint | None:
        """The task's data as the cache knows it now (None: the task moves no data)."""
        wanted = self.wanted(spec)
        upstream = spec.upstream
        if not wanted and upstream is None:
            return None
        transfers = []
        from_before = {u.rstrip("/") for u in upstream.gigabytes} if upstream else set()
        if upstream is not None:
            # what the stage before wrote is where it ran (skyd.scheduler.pipelines)
            transfers += [
                DataTransfer(
                    url=url,
                    cloud=upstream.cloud,
                    region=upstream.region,
                    gigabytes=gigabytes,
                    size_from=f"stage {upstream.stage + 1} wrote it there"
                    + (f" (job {upstream.job_id})" if upstream.job_id is not None else ""),
                )
                for url, gigabytes in upstream.gigabytes.items()
            ]
        for url, hint, how in wanted:
            direction, _, size_from = how.partition(":")
            if direction == "in" and url.rstrip("/") in from_before:
                continue  # priced from the stage before's location above
            store, account, bucket, prefix = _bucket_key(url)
            facts = self._facts.get((store, account, bucket, prefix)) or self._facts.get(
                (store, account, bucket, "")
            )
            region = self._configured_region(url) or (facts.region if facts else None)
            gigabytes = hint
            if gigabytes is None:
                exact = self._facts.get((store, account, bucket, prefix))
                gigabytes = exact.gigabytes if exact and exact.gigabytes is not None else 0.0
            transfers.append(
                DataTransfer(
                    url=url,
                    cloud=STORE_CLOUD.get(store, store),
                    region=region,
                    gigabytes=gigabytes,
                    direction="out" if direction == "out" else "in",
                    size_from=size_from,
                )
            )
        key = (self.version, tuple(transfers))
        cached = self._footprints.get(key)
        if cached is None:
            if len(self._footprints) > 1024:
                self._footprints.clear()
            cached = self._footprints[key] = DataFootprint(tuple(transfers), self.table)
        return cached

    def _configured_region(self, url: str) -> str | None:
        regions = self.settings.bucket_regions
        if not regions:
            return None
        # an Azure URL in either form (https://ACCOUNT.blob.core.windows.net/… or az://…)
        # matches a key written in either
        text = _canonical(url)
        best = max(
            (k for k in regions if text == _canonical(k) or text.startswith(_canonical(k) + "/")),
            key=len,
            default=None,
        )
        return regions[best] if best is not None else None

    def region_of(self, url: str) -> str | None:
        """The bucket's region as placement sees it ([data] bucket_regions, else the lookup
        of its prefix or of the whole bucket); None when not known (yet)."""
        try:
            store, account, bucket, prefix = _bucket_key(url)
        except ValueError:
            return None
        facts = self._facts.get((store, account, bucket, prefix)) or self._facts.get(
            (store, account, bucket, "")
        )
        return self._configured_region(url) or (facts.region if facts else None)

    def facts(self, url: str) -> BucketFacts | None:
        return self._facts.get(_bucket_key(url))

    def note(self, url: str) -> str | None:
        """What placement should say about a bucket it could not fully learn."""
        if self._configured_region(url):
            return "region from [data] bucket_regions"
        facts = self.facts(url)
        if facts is None:
            return "not looked up yet: priced as another region of its cloud"
        if facts.error:
            return f"location unknown ({facts.error}): priced as another region of its cloud"
        if not facts.complete:
            return "size is at least this (the listing stopped at [data] max_listed_objects)"
        return None

    # -- lookups (on the event loop) -----------------------------------------------------

    async def prefetch(self, spec: TaskSpec) -> None:
        """Look up every bucket of `spec` not cached yet (or stale), at most the configured
        timeout in all; what does not answer in time is left for the next call."""
        jobs = []
        for url, hint, _ in self.wanted(spec):
            key = _bucket_key(url)
            if self._fresh(key):
                continue
            task = self._inflight.get(key)
            if task is None:
                task = asyncio.ensure_future(self._lookup(key, need_size=hint is None))
                self._inflight[key] = task
                task.add_done_callback(functools.partial(self._landed, key))
            jobs.append(task)
        if jobs:
            await asyncio.wait(jobs, timeout=self.settings.lookup_timeout_seconds)

    def _landed(self, key: tuple[str, str | None, str, str], _task: object) -> None:
        self._inflight.pop(key, None)

    def _fresh(self, key: tuple[str, str | None, str, str]) -> bool:
        facts = self._facts.get(key)
        if facts is None:
            return False
        ttl = FAILED_RETRY_SECONDS if facts.error else self.settings.cache_seconds
        return self.clock.now() - facts.at < ttl

    async def _lookup(self, key: tuple[str, str | None, str, str], *, need_size: bool) -> None:
        store, _, bucket, prefix = key
        try:
            if store == "s3":
                facts = await asyncio.wait_for(
                    self._s3(bucket, prefix, need_size), self.settings.lookup_timeout_seconds
                )
            elif store == "gcs" and self.settings.gcs_endpoint_url:
                facts = await asyncio.wait_for(
                    self._gcs(bucket, prefix, need_size), self.settings.lookup_timeout_seconds
                )
            elif store == "r2":
                # Cloudflare places an R2 bucket itself and charges no egress from it (see
                # catalogs/egress.csv): nothing to learn that would change a placement
                facts = BucketFacts(None, None)
            elif store == "azure":
                facts = BucketFacts(None, None, error=AZURE_NOT_LOOKED_UP)
            else:
                facts = BucketFacts(None, None, error=f"no {store} lookup configured")
        except TimeoutError:
            facts = BucketFacts(None, None, error="lookup timed out")
        except Exception as exc:  # an SDK or network error: the bucket stays unknown
            facts = BucketFacts(None, None, error=f"{type(exc).__name__}: {exc}"[:300])
            log.info("data location of %s://%s unknown: %s", store, bucket, facts.error)
        self._facts[key] = BucketFacts(
            facts.region, facts.gigabytes, facts.complete, facts.error, self.clock.now()
        )
        self.version += 1

    async def _s3(self, bucket: str, prefix: str, need_size: bool) -> BucketFacts:
        import aioboto3  # only daemons whose tasks name S3 buckets pay for it
        from botocore.config import Config

        if self._session is None:
            self._session = aioboto3.Session()
        endpoint = self.settings.s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        timeout = self.settings.lookup_timeout_seconds
        config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2})
        async with self._session.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", config=config
        ) as s3:
            answer = await s3.get_bucket_location(Bucket=bucket)
            # S3 answers no constraint for us-east-1, and "EU" for buckets made as eu-west-1
            region = answer.get("LocationConstraint") or "us-east-1"
            region = "eu-west-1" if region == "EU" else region
            if not need_size:
                return BucketFacts(region, None)
            total, seen, complete = 0, 0, True
            # a mount of s3://b/train is the object `train` or the folder `train/` (not
            # `training-other/`), as skyd.runner.buckets copies it
            folder = prefix.rstrip("/") + "/" if prefix else ""
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    key = str(item.get("Key", ""))
                    if not prefix or key == prefix or key.startswith(folder):
                        total += int(item.get("Size", 0))
                    seen += 1
                if seen >= self.settings.max_listed_objects:
                    complete = not page.get("IsTruncated", False)
                    break
            return BucketFacts(region, total / GB, complete)

    async def _gcs(self, bucket: str, prefix: str, need_size: bool) -> BucketFacts:
        """Bucket metadata (`location`) and, if wanted, the objects' sizes from the GCS JSON
        API at the configured endpoint."""
        import aiohttp

        base = f"{self.settings.gcs_endpoint_url.rstrip('/')}/storage/v1/b/{quote(bucket)}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base) as response:
                if response.status != 200:
                    raise RuntimeError(f"GCS answered {response.status} for bucket {bucket}")
                body = await response.json()
            location = str(body.get("location") or "").lower()
            # a multi-region ("US", "EU") or dual-region bucket has no single region
            region = location if "-" in location else None
            if not need_size:
                return BucketFacts(region, None)
            folder = prefix.rstrip("/") + "/" if prefix else ""
            total, seen, token = 0, 0, ""
            while True:
                params = {"prefix": prefix, "fields": "items(name,size),nextPageToken"}
                if token:
                    params["pageToken"] = token
                async with http.get(f"{base}/o", params=params) as response:
                    if response.status != 200:
                        raise RuntimeError(f"GCS answered {response.status} listing {bucket}")
                    page = await response.json()
                for item in page.get("items", []):
                    name = str(item.get("name", ""))
                    if not prefix or name == prefix or name.startswith(folder):
                        total += int(item.get("size", 0))
                    seen += 1
                token = str(page.get("nextPageToken") or "")
                if not token:
                    return BucketFacts(region, total / GB)
                if seen >= self.settings.max_listed_objects:
                    return BucketFacts(region, total / GB, complete=False)


def locator_for(settings: DataSettings, directories: Iterable[Any], clock: Clock) -> DataLocator:
    from skyd.optimizer.egress import find_egress_table

    return DataLocator(settings, find_egress_table(directories), clock)


FootprintOf = Callable[[TaskSpec], DataFootprint | None]
