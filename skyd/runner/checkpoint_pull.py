"""Brings a job's checkpoint directory home from its node, moving only what changed.

The node lists its directory (type, size, mtime, path of every entry). A file whose size
and mtime are what they were at the last pull, and whose local copy is untouched since, is
hard-linked from the local copy into a staging directory beside it; only new or changed
files cross the network, as one `tar -c` of just those, extracted as it arrives (tarfile's
streaming mode, through skyd.providers.ssh.streams), so the daemon never holds more than a
chunk of it whatever the checkpoint's size. Files gone from the node are not staged, so
they disappear.

The local path is a symlink to a version directory beside it (`.NAME@TOKEN`): the staging
directory becomes a new version, and a new link to it replaces the old link in one rename
(os.replace), so the path always names a whole copy, never nothing and never a mix (a
resume upload starting at any moment finds one). The old version is removed after, unless
a reader holds it (`reading`: a shared lock on `.NAME.lock`), then at the next swap. The
first swap over a plain directory (as the scheduler makes it) exchanges it with the link
in one renameat2(RENAME_EXCHANGE). A pull cut short (an error, the daemon killed) leaves
the previous complete copy; `recover` removes what a killed swap left beside it.

Beside the local directory `.NAME.pulled.json` records, per file, the node's size and
mtime it was pulled at and the local copy's size, mtime and inode then: a file counts as
unchanged only if both still match (a manifest older than the directory, after a crash
between the swap and its write, matches only the files it really describes).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import json
import os
import shlex
import shutil
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from skyd.errors import ProviderError
from skyd.providers.ssh.connection import SshConnections, SshTarget
from skyd.providers.ssh.streams import StreamFailed, read_stream

# the node's entry kinds (find's %y) that are copied; others (sockets, fifos) are not
_COPIED = ("f", "l")


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry of the node's directory: find's %y kind and "size mtime" as it printed them."""

    kind: str
    stamp: str


def listing_command(directory: str) -> str:
    """Every entry under `directory`, NUL-terminated: kind, size, mtime, relative path."""
    where = shlex.quote(directory)
    return f"if [ -d {where} ]; then find {where} -mindepth 1 -printf '%y %s %T@ %P\\0'; fi"


def parse_listing(out: bytes) -> dict[str, Entry]:
    entries = {}
    for record in out.split(b"\0"):
        if not record:
            continue
        kind, size, mtime, rel = record.split(b" ", 3)
        entries[os.fsdecode(rel)] = Entry(kind.decode(), f"{size.decode()} {mtime.decode()}")
    return entries


def fetch_command(directory: str, *, everything: bool) -> str:
    """A tar of the listed files (relative paths on stdin, NUL-terminated) or of the whole
    directory. A listed file deleted since the listing is skipped (it is gone: it will not be
    staged); a file changed while read fails the pull, as a torn copy must not be kept."""
    where = shlex.quote(directory)
    if everything:
        return f"tar -c -f - -C {where} ."
    return f"tar -c -f - -C {where} --no-recursion --ignore-failed-read --null -T -"


def manifest_path(local: Path) -> Path:
    return local.with_name(f".{local.name}.pulled.json")


def staging_path(local: Path) -> Path:
    return local.with_name(f".{local.name}-pulling")


def old_path(local: Path) -> Path:
    """Where swaps before versioned copies (and the fallback without renameat2) moved the
    previous copy while the new one was renamed in."""
    return local.with_name(f".{local.name}-old")


def link_path(local: Path) -> Path:
    """The new link, made beside `local` and renamed over it."""
    return local.with_name(f".{local.name}-link")


def _version_prefix(local: Path) -> str:
    return f".{local.name}@"


def current(local: Path) -> Path:
    """The directory `local` names now: its version directory when it is a link, else
    `local` itself."""
    if local.is_symlink():
        return local.parent / os.readlink(local)
    return local


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def recover(local: Path) -> None:
    """Undo what a daemon killed mid-swap left: the previous copy back in place if an older
    swap moved it aside and the new one was not there yet; a half-made staging directory or
    manifest, an unused new link (or the plain directory an exchange put there) and every
    version directory `local` does not name, removed."""
    old = old_path(local)
    if not local.exists() and not local.is_symlink() and old.is_dir():
        old.rename(local)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging_path(local), ignore_errors=True)
    _remove(link_path(local))
    manifest_path(local).with_suffix(".partial").unlink(missing_ok=True)
    if local.parent.is_dir():
        _prune(local)


def lock_path(local: Path) -> Path:
    return local.with_name(f".{local.name}.lock")


@contextlib.contextmanager
def reading(local: Path) -> Iterator[Path]:
    """The version directory `local` names now, kept (not removed by a swap or `recover`)
    until the block ends: a reader (a resume upload) sees one whole copy throughout."""
    with open(lock_path(local), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield current(local)


def _prune(local: Path) -> None:
    """Remove the version directories `local` does not name, unless a reader holds one
    (then the next swap or `recover` does). They are renamed away under the lock and
    removed after it, so a reader waits for renames, never for a big removal."""
    prefix, removing = _version_prefix(local), f".{local.name}-removing-"
    if not any(p.name.startswith((prefix, removing)) for p in local.parent.iterdir()):
        return  # plain copies (or none) only: nothing to prune, no lock file to make
    with open(lock_path(local), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        named = current(local)
        for path in local.parent.iterdir():
            if path.name.startswith(prefix) and path != named:
                path.rename(local.with_name(removing + path.name.removeprefix(prefix)))
    for path in local.parent.iterdir():
        if path.name.startswith(removing):  # these, and any a killed daemon left
            shutil.rmtree(path, ignore_errors=True)


def _stat(path: Path) -> list[int] | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _load_manifest(local: Path) -> dict[str, list[object]]:
    try:
        data = json.loads(manifest_path(local).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def plan(local: Path, remote: dict[str, Entry]) -> tuple[list[str], list[str]]:
    """(files kept from the local copy, files to fetch), by relative path."""
    manifest = _load_manifest(local) if local.is_dir() else {}
    keep, fetch = [], []
    for rel, entry in sorted(remote.items()):
        if entry.kind not in _COPIED:
            continue
        known = manifest.get(rel)
        if (
            isinstance(known, list)
            and known[:1] == [entry.stamp]
            and known[1:] == _stat(local / rel)
        ):
            keep.append(rel)
        else:
            fetch.append(rel)
    return keep, fetch


def stage_kept(local: Path, staging: Path, remote: dict[str, Entry], keep: list[str]) -> None:
    """The staging directory with the node's directories and the unchanged files (hard links
    to the local copy: no bytes copied; a copy where links are not supported)."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    for rel, entry in sorted(remote.items()):
        if entry.kind == "d":
            (staging / rel).mkdir(parents=True, exist_ok=True)
    for rel in keep:
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(local / rel, target, follow_symlinks=False)
        except OSError:
            shutil.copy2(local / rel, target, follow_symlinks=False)


def extract(staging: Path, stream: IO[bytes]) -> None:
    """Unpack a tar as it arrives (tarfile's stream mode: one record at a time), then read
    the stream to its end (tar pads it past the archive's end marker)."""
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        tar.extractall(staging, filter="data")
    while stream.read(1 << 16):
        pass


def local_stats(local: Path) -> dict[str, list[int]]:
    """Size, mtime and inode of every file (and link) under `local`, by relative path."""
    stats = {}
    for path in local.rglob("*"):
        if not path.is_dir() or path.is_symlink():
            stat = _stat(path)
            if stat is not None:
                stats[path.relative_to(local).as_posix()] = stat
    return stats


def _write_manifest(local: Path, manifest: dict[str, list[object]]) -> None:
    partial = manifest_path(local).with_suffix(".partial")
    partial.write_text(json.dumps(manifest))
    partial.replace(manifest_path(local))


async def seed(
    connections: SshConnections,
    target: SshTarget,
    remote_dir: str,
    local: Path,
    before: dict[str, list[int]],
    *,
    timeout_s: float,
) -> None:
    """After `local` was uploaded to a new node (`before`: its files' stats then), record
    the node's size and mtime of each file it now holds, so the first pull from that node
    moves only what the job changes (not, again, the whole checkpoint it was given)."""
    code, out, _ = await connections.run_bytes(
        target, listing_command(remote_dir), timeout_s=timeout_s
    )
    if code != 0:
        return  # the first pull fetches everything: slower, not wrong
    remote = parse_listing(out)
    after = await asyncio.to_thread(local_stats, local)
    manifest: dict[str, list[object]] = {}
    for rel, entry in remote.items():
        stat = after.get(rel)
        if (
            entry.kind in _COPIED
            and stat is not None
            and before.get(rel) == stat  # the local file did not change during the upload
            and entry.stamp.split(" ", 1)[0] == str(stat[0])  # and all of it got there
        ):
            manifest[rel] = [entry.stamp, *stat]
    await asyncio.to_thread(_write_manifest, local, manifest)


def swap(local: Path, staging: Path, remote: dict[str, Entry]) -> None:
    """Put the staged copy in place of the local one and record what it holds."""
    manifest: dict[str, list[object]] = {}
    for rel, entry in remote.items():
        if entry.kind in _COPIED and (stat := _stat(staging / rel)) is not None:
            manifest[rel] = [entry.stamp, *stat]
    staging.chmod(0o700)
    version = local.with_name(f"{_version_prefix(local)}{os.urandom(6).hex()}")
    staging.rename(version)  # renames keep inodes: the manifest describes the version
    link = link_path(local)
    _remove(link)
    os.symlink(version.name, link)
    if local.is_symlink() or not local.exists():
        os.replace(link, local)  # one rename: `local` names the old copy, then the new
    else:  # a plain directory: exchanged with the link at once, then at the link's name
        _replace_directory(local, link)
        _remove(link)  # the plain directory, now at the link's name
    _write_manifest(local, manifest)
    _prune(local)


_AT_FDCWD = -100  # linux/fcntl.h: paths relative to the working directory (ours are absolute)
_RENAME_EXCHANGE = 2  # linux/fs.h


def _replace_directory(local: Path, link: Path) -> None:
    """Put `link` at `local`, a plain directory, which moves to `link`'s name: atomically
    (renameat2's RENAME_EXCHANGE, Linux 3.15+), else by two renames (the path missing
    between them; `recover` puts the directory back if the daemon dies there)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        done = libc.renameat2(
            _AT_FDCWD, os.fsencode(link), _AT_FDCWD, os.fsencode(local), _RENAME_EXCHANGE
        )
        exchanged = done == 0
    except (AttributeError, OSError):  # no renameat2 in this C library
        exchanged = False
    if exchanged:
        return
    local.rename(old_path(local))
    os.replace(link, local)
    old_path(local).rename(link)


async def pull(
    connections: SshConnections,
    target: SshTarget,
    remote_dir: str,
    local: Path,
    *,
    timeout_s: float,
    staged: Callable[[int], None],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Make `local` hold what `remote_dir` on the node holds, fetching only new and changed
    files; returns the bytes that crossed the network. `staged(bytes)` is called once those
    bytes are on disk and before the swap (when any crossed); `progress(bytes so far)` as
    they arrive, so a pull that fails midway still tells what crossed."""
    local.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(recover, local)
    code, out, err = await connections.run_bytes(
        target, listing_command(remote_dir), timeout_s=timeout_s
    )
    if code != 0:
        raise ProviderError(f"could not list the checkpoints on {target.name}: {err[:300]}")
    remote = parse_listing(out)
    keep, fetch = await asyncio.to_thread(plan, local, remote)
    staging = staging_path(local)
    received = 0
    try:
        await asyncio.to_thread(stage_kept, local, staging, remote, keep)
        if fetch:
            # nothing to keep: the whole directory, as one `tar -c .` (no list to send)
            names = b"".join(b"./" + os.fsencode(rel) + b"\0" for rel in fetch) if keep else b""
            try:
                code, _, received, err = await read_stream(
                    connections,
                    target,
                    fetch_command(remote_dir, everything=not keep),
                    lambda stream: extract(staging, stream),
                    timeout_s=timeout_s,
                    stdin=names,
                    progress=progress,
                )
            except StreamFailed as exc:
                raise ProviderError(f"bad checkpoint stream from {target.name}: {exc}") from exc
            if code != 0:
                raise ProviderError(
                    f"could not read the checkpoints on {target.name} (tar exited {code}): "
                    f"{err.strip()[:300]}"
                )
            staged(received)
        await asyncio.to_thread(swap, local, staging, remote)
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)
    return received
