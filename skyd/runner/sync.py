"""Ship a workdir or a file mount to a remote machine as one tar stream over SSH, honouring
`.skyignore` / `.gitignore` excludes (checkpoints come back through skyd.runner.checkpoint_pull).

One stream per tree instead of one SFTP round trip per file: a workdir of thousands of small
files costs one `tar -x` on the far side. Excludes follow SkyPilot: a `.skyignore` at the
root of the tree replaces `.gitignore` handling; otherwise every `.gitignore` in the tree
applies to its own directory and below (gitignore semantics, via pathspec).
"""

from __future__ import annotations

import io
import os
import shlex
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pathspec


class Excludes:
    """Which paths of a tree stay behind: .skyignore at the root, else each .gitignore."""

    def __init__(self, root: Path) -> None:
        self.root = root
        sky = root / ".skyignore"
        self._sky = _spec(sky) if sky.is_file() else None
        self._git: dict[str, pathspec.PathSpec[Any]] = {}  # directory (relative, "" = root) -> spec

    def excluded(self, rel: str, is_dir: bool) -> bool:
        probe = rel + "/" if is_dir else rel
        if self._sky is not None:
            return self._sky.match_file(probe)
        parts = rel.split("/")
        for depth in range(len(parts)):
            base = "/".join(parts[:depth])
            spec = self._gitignore(base)
            if spec is None:
                continue
            below = "/".join(parts[depth:])
            if spec.match_file(below + "/" if is_dir else below):
                return True
        return False

    def _gitignore(self, base: str) -> pathspec.PathSpec[Any] | None:
        if base not in self._git:
            path = self.root / base / ".gitignore" if base else self.root / ".gitignore"
            self._git[base] = _spec(path) if path.is_file() else pathspec.PathSpec([])
        spec = self._git[base]
        return spec if spec.patterns else None


def _spec(path: Path) -> pathspec.PathSpec[Any]:
    return pathspec.GitIgnoreSpec.from_lines(path.read_text().splitlines())


def walk(root: Path) -> Iterator[tuple[Path, str]]:
    """(path, relative name) of everything under `root` that is not excluded, parents first.
    Symlinks are listed (and shipped as links), never followed."""
    excludes = Excludes(root)
    for current, dirs, files in os.walk(root):
        here = Path(current)
        rel_dir = here.relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir
        kept = []
        for name in sorted(dirs):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if excludes.excluded(rel, True):
                continue
            yield here / name, rel
            if not (here / name).is_symlink():
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not excludes.excluded(rel, False):
                yield here / name, rel


def pack(source: Path, arcname: str, *, excludes: bool = True) -> bytes:
    """A tar of `source` (file or tree) whose top entry is named `arcname`, in memory (for
    small trees and tests; uploads stream it with `write_tar`)."""
    buffer = io.BytesIO()
    write_tar(buffer, source, arcname, excludes=excludes)
    return buffer.getvalue()


def write_tar(out: IO[bytes], source: Path, arcname: str, *, excludes: bool = True) -> None:
    """Write a tar of `source` to `out` as a stream (tarfile's "w|": a record at a time, each
    file read in chunks), so a tree of any size costs the writer a bounded buffer."""
    with tarfile.open(fileobj=out, mode="w|") as tar:
        tar.add(source, arcname=arcname, recursive=False)
        if source.is_dir():
            entries = walk(source) if excludes else _everything(source)
            for path, rel in entries:
                tar.add(path, arcname=f"{arcname}/{rel}", recursive=False)


def _everything(root: Path) -> Iterator[tuple[Path, str]]:
    for current, dirs, files in os.walk(root):
        for name in sorted(dirs) + sorted(files):
            path = Path(current) / name
            yield path, path.relative_to(root).as_posix()


def unpack_command(parent: str) -> str:
    """The remote side of `pack`: extract the stream into `parent` (made if missing)."""
    where = shlex.quote(parent or ".")
    return f"mkdir -p {where} && tar -x -m -f - -C {where}"


def fingerprint_command(directory: str) -> str:
    """A line that changes whenever anything in the directory does (names, sizes, mtimes)."""
    where = shlex.quote(directory)
    return (
        f"if [ -d {where} ]; then find {where} -printf '%P %s %T@\\n' | sort | cksum; "
        "else echo none; fi"
    )
