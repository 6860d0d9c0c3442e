"""Who is calling: the peer uid of the Unix socket connection (SO_PEERCRED), and admin rights."""

from __future__ import annotations

import grp
import pwd
import socket
import struct
import time

from aiohttp import web

from skyd.errors import PermissionDeniedError
from skyd.identity import Caller, user_name

_UCRED = struct.Struct("3i")  # pid, uid, gid


def peer_uid(request: web.Request) -> int:
    transport = request.transport
    sock: socket.socket | None = transport.get_extra_info("socket") if transport else None
    if sock is None or sock.family != socket.AF_UNIX:
        raise PermissionDeniedError("caller identity unknown: only Unix-socket clients are served")
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    _pid, uid, _gid = _UCRED.unpack(creds)
    return int(uid)


def is_admin(uid: int, admin_group: str) -> bool:
    if uid == 0:
        return True
    try:
        group = grp.getgrnam(admin_group)
        user = pwd.getpwuid(uid)
    except KeyError:
        return False
    return user.pw_name in group.gr_mem or user.pw_gid == group.gr_gid


class CallerDirectory:
    """Who a uid is and whether it administers skyd. Each lookup reads /etc/passwd and
    /etc/group; membership changes are rare, so answers are remembered for `ttl_seconds`."""

    def __init__(self, admin_group: str, ttl_seconds: float = 30.0) -> None:
        self.admin_group = admin_group
        self._ttl = ttl_seconds
        self._remembered: dict[int, tuple[float, Caller]] = {}

    def caller(self, uid: int) -> Caller:
        now = time.monotonic()
        held = self._remembered.get(uid)
        if held is not None and held[0] > now:
            return held[1]
        caller = Caller(uid=uid, is_admin=is_admin(uid, self.admin_group), name=user_name(uid))
        self._remembered[uid] = (now + self._ttl, caller)
        return caller


def caller_of(request: web.Request, directory: CallerDirectory | str) -> Caller:
    """The caller of `request`; `directory` may be just the admin group's name (no caching)."""
    uid = peer_uid(request)
    if isinstance(directory, str):
        return Caller(uid=uid, is_admin=is_admin(uid, directory))
    return directory.caller(uid)
