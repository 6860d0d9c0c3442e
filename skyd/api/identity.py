"""Who is calling: the peer uid of the Unix socket connection (SO_PEERCRED), and admin rights."""

from __future__ import annotations

import grp
import pwd
import socket
import struct

from aiohttp import web

from skyd.errors import PermissionDeniedError
from skyd.scheduler.service import Caller

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


def caller_of(request: web.Request, admin_group: str) -> Caller:
    uid = peer_uid(request)
    return Caller(uid=uid, is_admin=is_admin(uid, admin_group))
