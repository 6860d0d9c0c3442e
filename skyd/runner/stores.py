"""One bucket of any store skyd reads (S3, GCS, Azure Blob, Cloudflare R2) behind one small
interface, each over its cloud's own SDK client: boto3 (S3 and R2, which speaks S3's API),
google-cloud-storage, azure-storage-blob.

Where each store's endpoint and credentials come from (the job's own environment, so a job
reads its buckets with its owner's credentials, never the daemon's):
- s3: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (none: public buckets, unsigned), endpoint
  AWS_ENDPOINT_URL (e.g. moto's server).
- r2: R2_ACCESS_KEY_ID / R2_SECRET_ACCESS_KEY (else the AWS_ pair), endpoint R2_ENDPOINT_URL,
  else https://$CLOUDFLARE_ACCOUNT_ID.r2.cloudflarestorage.com (Cloudflare's S3 endpoint).
- gcs: STORAGE_EMULATOR_HOST (the variable google-cloud-storage itself honours) for an
  emulator, anonymous; else Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS);
  project GOOGLE_CLOUD_PROJECT.
- azure: AZURE_STORAGE_CONNECTION_STRING (Azurite's well-known one in tests), else
  https://ACCOUNT.blob.core.windows.net with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or
  azure-identity's DefaultAzureCredential.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from skyd.providers.base import MANAGED, TAG_MANAGED

# labels skyd writes on a bucket it created, besides TAG_MANAGED: who, which job, and
# whether it outlives that job (SkyPilot's `persistent`)
TAG_OWNER = "skyd-owner"
TAG_JOB = "skyd-job"
TAG_PERSISTENT = "skyd-persistent"


class StoreError(RuntimeError):
    """A store could not be reached or refused; the message says which and how to fix it."""


class Bucket(Protocol):
    url: str

    def exists(self) -> bool: ...
    def create(self, labels: Mapping[str, str]) -> None: ...
    def labels(self) -> dict[str, str]: ...
    def objects(self, prefix: str) -> Iterator[tuple[str, int]]: ...
    def download(self, key: str, path: Path) -> None: ...
    def upload(self, path: Path, key: str) -> None: ...
    def delete(self) -> None: ...


def bucket_labels(owner: str, job: str, persistent: bool) -> dict[str, str]:
    """The labels of a bucket skyd creates. Lowercase letters, digits, `-` and `_` only: GCS
    labels allow no more, and S3 tags and Azure metadata take them as they are."""

    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9_-]", "_", text.lower())[:63]

    return {
        TAG_MANAGED: MANAGED,
        TAG_OWNER: clean(owner),
        TAG_JOB: clean(job),
        TAG_PERSISTENT: "true" if persistent else "false",
    }


class S3Bucket:
    """An S3 bucket, or an R2 bucket through Cloudflare's S3-compatible endpoint."""

    def __init__(self, url: str, bucket: str, client: Any) -> None:
        self.url, self.bucket, self.client = url, bucket, client

    def exists(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self.client.exceptions.ClientError:
            return False
        return True

    def create(self, labels: Mapping[str, str]) -> None:
        self.client.create_bucket(Bucket=self.bucket)
        tags = [{"Key": k, "Value": v} for k, v in labels.items()]
        self.client.put_bucket_tagging(Bucket=self.bucket, Tagging={"TagSet": tags})

    def labels(self) -> dict[str, str]:
        try:
            found = self.client.get_bucket_tagging(Bucket=self.bucket)["TagSet"]
        except self.client.exceptions.ClientError:
            return {}  # NoSuchTagSet: a bucket nobody tagged
        return {str(t["Key"]): str(t["Value"]) for t in found}

    def objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield str(item["Key"]), int(item.get("Size", 0))

    def download(self, key: str, path: Path) -> None:
        self.client.download_file(self.bucket, key, str(path))

    def upload(self, path: Path, key: str) -> None:
        self.client.upload_file(str(path), self.bucket, key)

    def delete(self) -> None:
        keys = [key for key, _ in self.objects("")]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            chunk = [{"Key": key} for key in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk})
        self.client.delete_bucket(Bucket=self.bucket)


class GcsBucket:
    def __init__(self, url: str, bucket: str, client: Any) -> None:
        self.url, self.client = url, client
        self.bucket = client.bucket(bucket)

    def exists(self) -> bool:
        return bool(self.bucket.exists())

    def create(self, labels: Mapping[str, str]) -> None:
        self.bucket.create()
        # set by a PATCH rather than at insert: GCS takes either, gcp-storage-emulator only
        # keeps labels that were patched in
        self.bucket.labels = dict(labels)
        self.bucket.patch()

    def labels(self) -> dict[str, str]:
        self.bucket.reload()
        return dict(self.bucket.labels or {})

    def objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        for blob in self.client.list_blobs(self.bucket, prefix=prefix or None):
            yield str(blob.name), int(blob.size or 0)

    def download(self, key: str, path: Path) -> None:
        self.bucket.blob(key).download_to_filename(str(path))

    def upload(self, path: Path, key: str) -> None:
        self.bucket.blob(key).upload_from_filename(str(path))

    def delete(self) -> None:
        for blob in list(self.client.list_blobs(self.bucket)):
            blob.delete()
        self.bucket.delete()


class AzureContainer:
    def __init__(self, url: str, container: Any) -> None:
        self.url, self.container = url, container

    def exists(self) -> bool:
        return bool(self.container.exists())

    def create(self, labels: Mapping[str, str]) -> None:
        # metadata names must be C# identifiers: skyd-managed is stored as skyd_managed
        self.container.create_container(metadata=azure_metadata(labels))

    def labels(self) -> dict[str, str]:
        metadata = self.container.get_container_properties().metadata or {}
        return {k.replace("_", "-"): str(v) for k, v in metadata.items()}

    def objects(self, prefix: str) -> Iterator[tuple[str, int]]:
        for blob in self.container.list_blobs(name_starts_with=prefix or None):
            yield str(blob.name), int(blob.size or 0)

    def download(self, key: str, path: Path) -> None:
        with open(path, "wb") as out:
            self.container.download_blob(key).readinto(out)

    def upload(self, path: Path, key: str) -> None:
        with open(path, "rb") as data:
            self.container.upload_blob(key, data, overwrite=True)

    def delete(self) -> None:
        self.container.delete_container()  # Azure deletes the blobs with it


def azure_metadata(labels: Mapping[str, str]) -> dict[str, str]:
    return {k.replace("-", "_"): v for k, v in labels.items()}


def s3_client(env: Mapping[str, str], endpoint: str | None, prefix: str = "AWS") -> Any:
    import boto3  # only paid for by jobs with bucket mounts
    from botocore import UNSIGNED
    from botocore.config import Config

    key = env.get(f"{prefix}_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID")
    secret = env.get(f"{prefix}_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_ACCESS_KEY")
    session = boto3.session.Session(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=env.get("AWS_SESSION_TOKEN") if prefix == "AWS" else None,
        region_name=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1",
    )
    config = Config(signature_version=UNSIGNED) if not (key and secret) else None
    return session.client("s3", endpoint_url=endpoint or None, config=config)


def r2_endpoint(env: Mapping[str, str]) -> str:
    if env.get("R2_ENDPOINT_URL"):
        return env["R2_ENDPOINT_URL"]
    account = env.get("CLOUDFLARE_ACCOUNT_ID")
    if not account:
        raise StoreError(
            "r2:// buckets need Cloudflare's endpoint: set CLOUDFLARE_ACCOUNT_ID (or "
            "R2_ENDPOINT_URL) in the task's envs, with R2_ACCESS_KEY_ID and "
            "R2_SECRET_ACCESS_KEY as --secret"
        )
    return f"https://{account}.r2.cloudflarestorage.com"


def gcs_client(env: Mapping[str, str], *, ambient: bool = True) -> Any:
    """`ambient`: whether this process's own Application Default Credentials may be used (the
    job's shim, or the daemon listing its own buckets), or only what `env` gives (the daemon
    acting for a job)."""
    from google.cloud import storage  # type: ignore[attr-defined]

    project = env.get("GOOGLE_CLOUD_PROJECT") or env.get("CLOUDSDK_CORE_PROJECT")
    emulator = env.get("STORAGE_EMULATOR_HOST")
    if emulator:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=project or "skyd",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": emulator},
        )
    key_file = env.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_file:
        from google.oauth2 import service_account

        load: Any = service_account.Credentials.from_service_account_file
        credentials = load(key_file)
        return storage.Client(project=project or credentials.project_id, credentials=credentials)
    if not ambient:
        raise StoreError(
            "gs:// buckets for a job on other machines are prepared by the daemon with the "
            "job's own credentials: set GOOGLE_APPLICATION_CREDENTIALS (a key file) in its envs"
        )
    return storage.Client(project=project)  # Application Default Credentials


def azure_service(env: Mapping[str, str], account: str | None, *, ambient: bool = True) -> Any:
    from azure.storage.blob import BlobServiceClient

    connection = env.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection:
        service = BlobServiceClient.from_connection_string(connection)
        if account and service.account_name != account:
            raise StoreError(
                f"az://{account}/…: AZURE_STORAGE_CONNECTION_STRING is for account "
                f"{service.account_name}, not {account}"
            )
        return service
    account = account or env.get("AZURE_STORAGE_ACCOUNT")
    if not account:
        raise StoreError(
            "an Azure container skyd creates needs a storage account: set "
            "AZURE_STORAGE_ACCOUNT or AZURE_STORAGE_CONNECTION_STRING in the task's envs"
        )
    credential: Any = env.get("AZURE_STORAGE_KEY") or env.get("AZURE_STORAGE_SAS_TOKEN")
    if not credential and not ambient:
        raise StoreError(
            f"Azure account {account}: the daemon prepares a remote job's containers with the "
            "job's own credentials: set AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING"
        )
    if not credential:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return BlobServiceClient(f"https://{account}.blob.core.windows.net", credential=credential)


def open_bucket(
    mount: Mapping[str, Any], env: Mapping[str, str], *, ambient: bool = True
) -> Bucket:
    """The bucket a mount names (store, bucket, account, url), with the job's credentials;
    `ambient` False: never this process's own (see gcs_client)."""
    store, name, url = mount.get("store", "s3"), mount["bucket"], mount["url"]
    if store == "s3":
        endpoint = mount.get("endpoint_url") or env.get("AWS_ENDPOINT_URL")
        return S3Bucket(url, name, s3_client(env, endpoint))
    if store == "r2":
        return S3Bucket(url, name, s3_client(env, r2_endpoint(env), prefix="R2"))
    if store == "gcs":
        return GcsBucket(url, name, gcs_client(env, ambient=ambient))
    if store == "azure":
        service = azure_service(env, mount.get("account"), ambient=ambient)
        return AzureContainer(url, service.get_container_client(name))
    raise StoreError(f"{url}: skyd does not read {store} buckets")
