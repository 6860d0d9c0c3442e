"""Who acts on skyd: the calling user (`Caller`) and this daemon's lasting id (stdlib only).

It sits below scheduler, accounting, clusters and api, so each may name a caller without
importing another (they once formed an import cycle through the scheduler).
"""

from __future__ import annotations

import pwd
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Caller:
    uid: int
    is_admin: bool
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", user_name(self.uid))


def daemon_identity(state_dir: Path) -> str:
    """This daemon's lasting id (made once per state directory), carried by every resource."""
    path = state_dir / "daemon-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        ident = f"skyd-{uuid.uuid4().hex[:12]}"
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(ident + "\n")
        return ident


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
