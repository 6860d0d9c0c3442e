"""The buckets skyd created (`skyctl storage ls` / `delete`), found by the labels it wrote on
them (skyd.runner.stores.bucket_labels), not by a table of its own: a bucket a job created,
deleted outside skyd or left by an earlier daemon shows as the store says it is.

The daemon lists with its own credentials (its environment, as for launching instances) and
the endpoints in `[data]`: S3 (`s3_endpoint_url`, else AWS's), GCS (`gcs_endpoint_url`, an
emulator's or the JSON API's), R2 (R2_ENDPOINT_URL or CLOUDFLARE_ACCOUNT_ID), Azure Blob
(AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT). A store with none of these is
not asked; one that fails is reported with its error, never fatal to the listing.

Calls are blocking SDK calls: the API runs them in a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from skyd.config import DataSettings
from skyd.providers.base import MANAGED, TAG_MANAGED
from skyd.runner.stores import (
    TAG_JOB,
    TAG_OWNER,
    TAG_PERSISTENT,
    AzureContainer,
    Bucket,
    GcsBucket,
    S3Bucket,
    azure_service,
    gcs_client,
    r2_endpoint,
    s3_client,
)

AZURE_REGION_UNKNOWN = (
    "unknown: an Azure storage account's region is an ARM property; set it in [data] bucket_regions"
)


@dataclass(frozen=True)
class BucketRow:
    name: str
    store: str
    url: str
    region: str | None
    created_by: str
    job: str
    persistent: bool
    account: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(
    store: str,
    name: str,
    url: str,
    region: str | None,
    labels: Mapping[str, str],
    account: str | None = None,
) -> BucketRow:
    return BucketRow(
        name=name,
        store=store,
        url=url,
        region=region,
        created_by=labels.get(TAG_OWNER, ""),
        job=labels.get(TAG_JOB, ""),
        persistent=labels.get(TAG_PERSISTENT, "true") != "false",
        account=account,
    )


def _ours(labels: Mapping[str, str]) -> bool:
    return labels.get(TAG_MANAGED) == MANAGED


class BucketRegistry:
    def __init__(self, data: DataSettings, environ: Mapping[str, str] | None = None) -> None:
        self.data = data
        self.environ = dict(os.environ if environ is None else environ)

    def env(self) -> dict[str, str]:
        env = dict(self.environ)
        if self.data.s3_endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.data.s3_endpoint_url
        if self.data.gcs_endpoint_url:
            env["STORAGE_EMULATOR_HOST"] = self.data.gcs_endpoint_url
        return env

    def stores(self) -> dict[str, str]:
        """store → "" when skyd asks it, else why it does not."""
        env = self.env()
        aws = any(k in env for k in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ENDPOINT_URL"))
        return {
            "s3": "" if aws else "no AWS credentials or [data] s3_endpoint_url",
            "gcs": ""
            if env.get("STORAGE_EMULATOR_HOST") or env.get("GOOGLE_APPLICATION_CREDENTIALS")
            else "no [data] gcs_endpoint_url or GOOGLE_APPLICATION_CREDENTIALS",
            "azure": ""
            if env.get("AZURE_STORAGE_CONNECTION_STRING") or env.get("AZURE_STORAGE_ACCOUNT")
            else "no AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT",
            "r2": ""
            if env.get("R2_ENDPOINT_URL") or env.get("CLOUDFLARE_ACCOUNT_ID")
            else "no R2_ENDPOINT_URL or CLOUDFLARE_ACCOUNT_ID",
        }

    def listing(self) -> tuple[list[BucketRow], dict[str, str]]:
        """skyd's buckets on every store it can ask, and store → why it was not listed."""
        rows: list[BucketRow] = []
        problems: dict[str, str] = {}
        lister = {"s3": self._s3, "r2": self._r2, "gcs": self._gcs, "azure": self._azure}
        for store, skipped in self.stores().items():
            if skipped:
                problems[store] = f"not asked: {skipped}"
                continue
            try:
                rows.extend(lister[store]())
            except Exception as exc:  # any SDK or network error: that store is unknown
                problems[store] = f"{type(exc).__name__}: {exc}"[:300]
        rows.sort(key=lambda row: (row.name, row.store))
        return rows, problems

    def _s3(self) -> list[BucketRow]:
        env = self.env()
        client = s3_client(env, env.get("AWS_ENDPOINT_URL"))
        found = []
        for item in client.list_buckets().get("Buckets", []):
            name = str(item["Name"])
            labels = S3Bucket(f"s3://{name}", name, client).labels()
            if _ours(labels):
                where = client.get_bucket_location(Bucket=name).get("LocationConstraint")
                region = "eu-west-1" if where == "EU" else (where or "us-east-1")
                found.append(_row("s3", name, f"s3://{name}", region, labels))
        return found

    def _r2(self) -> list[BucketRow]:
        env = self.env()
        client = s3_client(env, r2_endpoint(env), prefix="R2")
        found = []
        for item in client.list_buckets().get("Buckets", []):
            name = str(item["Name"])
            labels = S3Bucket(f"r2://{name}", name, client).labels()
            if _ours(labels):
                # R2 places a bucket itself ("automatic" location); its egress is free anyway
                found.append(_row("r2", name, f"r2://{name}", "auto", labels))
        return found

    def _gcs(self) -> list[BucketRow]:
        client = gcs_client(self.env())
        found = []
        for bucket in client.list_buckets():
            labels = dict(bucket.labels or {})
            if _ours(labels):
                region = str(bucket.location or "").lower() or None
                found.append(_row("gcs", bucket.name, f"gs://{bucket.name}", region, labels))
        return found

    def _azure(self) -> list[BucketRow]:
        env = self.env()
        service = azure_service(env, None)
        account = str(service.account_name)
        region = self.data.bucket_regions.get(f"az://{account}") or AZURE_REGION_UNKNOWN
        found = []
        for item in service.list_containers(include_metadata=True):
            labels = {k.replace("_", "-"): str(v) for k, v in (item.metadata or {}).items()}
            if _ours(labels):
                url = f"az://{account}/{item.name}"
                found.append(_row("azure", item.name, url, region, labels, account))
        return found

    def open(self, row: BucketRow) -> Bucket:
        env = self.env()
        if row.store == "s3":
            return S3Bucket(row.url, row.name, s3_client(env, env.get("AWS_ENDPOINT_URL")))
        if row.store == "r2":
            return S3Bucket(row.url, row.name, s3_client(env, r2_endpoint(env), prefix="R2"))
        if row.store == "gcs":
            return GcsBucket(row.url, row.name, gcs_client(env))
        service = azure_service(env, row.account)
        return AzureContainer(row.url, service.get_container_client(row.name))

    def delete(self, row: BucketRow) -> None:
        self.open(row).delete()
