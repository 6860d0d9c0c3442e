"""Object-store emulators on loopback for tests and demos: moto's S3 server (also standing in
for Cloudflare R2's S3-compatible endpoint), gcp-storage-emulator (PyPI) for GCS, and
Microsoft's Azurite (npm, installed by .ci/setup.d/40-azurite.sh) for Azure Blob.

Each is a real server speaking its store's HTTP API; tests reach them with the clouds' own
SDK clients. AZURITE_CONNECTION is Azurite's documented development-account connection
string (account devstoreaccount1 and its published key) pointed at the chosen port.
`quiet_relay` stands in front of one and can stop answering (an endpoint gone quiet).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public: it is in Azurite's README)
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"emulator exited with code {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a port that is coming up, not ordering work
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout}s")


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto keeps its buckets per process, not per server: start from none, whatever an
    # earlier server in this process left
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
    try:
        yield url
    finally:
        server.stop()


def moto_s3_client(url: str) -> Any:
    """A boto3 S3 client for the moto server at `url`, with moto's test credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@contextmanager
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator in this process (in memory); yields STORAGE_EMULATOR_HOST."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class Azurite:
    port: int

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT};"
        )


def azurite_command() -> str:
    found = shutil.which("azurite-blob")
    if found is None:
        raise RuntimeError(
            "azurite-blob is not installed: run .ci/setup.d/40-azurite.sh (npm install -g azurite)"
        )
    return found


@contextmanager
def azurite() -> Iterator[Azurite]:
    """Azurite's Blob service as a child process, data in a temporary directory."""
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="azurite-") as data,
        open(f"{data}.log", "wb") as log,
    ):
        proc = subprocess.Popen(
            [
                azurite_command(),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(port),
                "--location",
                data,
                "--silent",
                # the SDK on PyPI may speak a newer API version than this Azurite knows
                "--skipApiVersionCheck",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_port(port, proc, timeout=60)
            yield Azurite(port)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            Path(f"{data}.log").unlink(missing_ok=True)


class QuietRelay:
    """A TCP relay to `upstream` (http://HOST:PORT) at `url` that, once `hang` is set, takes
    connections and never answers, and lets the open ones go quiet too."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").partition(":")
        self._upstream = (host, int(port))
        self.hang = False
        self._held: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self._server.accept()
                if self.hang:
                    self._held.append(conn)
                    continue
                up = socket.create_connection(self._upstream)
                for a, b in ((conn, up), (up, conn)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if self.hang:
                    self._held += [source, sink]
                    return
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._server.close()
        for conn in self._held:
            conn.close()


@contextmanager
def quiet_relay(upstream: str) -> Iterator[QuietRelay]:
    relay = QuietRelay(upstream)
    try:
        yield relay
    finally:
        relay.close()
