"""Task env values encrypted at rest in skyd.db (Fernet, from the `cryptography` package).

The key is `secrets.key` in the state dir, created 0600 on first open. A stored task spec keeps
its shape — only each `envs` value becomes `skyd-sealed:v1:<key id>:<token>` — so everything
that reads a spec for its resources (planner, accounting, the queue) works on the sealed text
and nothing decrypts it but the two places that need the values: the job's environment when
an attempt starts (`open_envs`) and `GET /v1/jobs/{id}` (which shows envs and redacts secrets).
Keys are remembered per process by id, so a sealed value opens wherever it is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from skyd.errors import StoreError

KEY_FILE = "secrets.key"
PREFIX = "skyd-sealed:v1:"
_KEYS: dict[str, Fernet] = {}  # key id → key, every key this process has loaded


class Sealer:
    """Seals env values with one state dir's key."""

    def __init__(self, key: bytes) -> None:
        self.key_id = hashlib.sha256(key).hexdigest()[:12]
        self._fernet = Fernet(key)
        _KEYS[self.key_id] = self._fernet

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> Sealer:
        """The state dir's key, created (0600, never replaced) if there is none yet."""
        path = state_dir / KEY_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes().strip()
        else:
            key = Fernet.generate_key()
            with os.fdopen(fd, "wb") as fh:
                fh.write(key + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(path, 0o600)
        try:
            return cls(key)
        except ValueError:
            raise StoreError(f"{path} is not a Fernet key; restore it from a backup") from None

    def seal(self, value: str) -> str:
        if value.startswith(PREFIX):
            return value
        token = self._fernet.encrypt(value.encode()).decode()
        return f"{PREFIX}{self.key_id}:{token}"

    def seal_spec_json(self, spec_json: str) -> str:
        """The spec with each env value sealed (unchanged when it has no envs)."""
        if '"envs":{}' in spec_json or '"envs"' not in spec_json:
            return spec_json
        spec = json.loads(spec_json)
        envs = spec.get("envs")
        if not isinstance(envs, dict) or not envs:
            return spec_json
        spec["envs"] = {k: self.seal(v) if isinstance(v, str) else v for k, v in envs.items()}
        return json.dumps(spec, separators=(",", ":"))


def open_value(value: str) -> str:
    if not value.startswith(PREFIX):
        return value
    key_id, _, token = value[len(PREFIX) :].partition(":")
    fernet = _KEYS.get(key_id)
    if fernet is None:
        raise StoreError(
            f"an env value is sealed with key {key_id}, which this daemon does not have "
            f"(its state dir's {KEY_FILE} was replaced?)"
        )
    try:
        return fernet.decrypt(token.encode()).decode()
    except InvalidToken:
        raise StoreError(f"a sealed env value does not open with key {key_id}") from None


def open_envs(envs: Mapping[str, str]) -> dict[str, str]:
    """The env values as the task gave them."""
    return {key: open_value(value) for key, value in envs.items()}


def open_spec_json(spec_json: str) -> str:
    if PREFIX not in spec_json:
        return spec_json
    spec = json.loads(spec_json)
    spec["envs"] = open_envs(spec.get("envs") or {})
    return json.dumps(spec, separators=(",", ":"))


class SealingConnection(sqlite3.Connection):
    """The store's connection, carrying the sealer that job inserts use."""

    sealer: Sealer | None = None


def seal_for(conn: sqlite3.Connection, spec_json: str) -> str:
    sealer = getattr(conn, "sealer", None)
    return spec_json if sealer is None else sealer.seal_spec_json(spec_json)


def seal_existing(conn: sqlite3.Connection, sealer: Sealer) -> int:
    """Seal the env values of jobs and clusters stored before sealing existed; how many rows."""
    changed = 0
    for table in ("jobs", "clusters"):
        rows = conn.execute(
            f'SELECT id, spec_json FROM {table} WHERE spec_json LIKE \'%"envs":{{"%\' '
            f"AND spec_json NOT LIKE '%{PREFIX}%'"
        ).fetchall()
        for row_id, spec_json in rows:
            sealed = sealer.seal_spec_json(spec_json)
            if sealed != spec_json:
                conn.execute(f"UPDATE {table} SET spec_json = ? WHERE id = ?", (sealed, row_id))
                changed += 1
    return changed
