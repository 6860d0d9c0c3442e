"""Task fields that name files: the workdir (a directory or a git repository), local paths
and file_mounts (local copies and buckets), resolved as SkyPilot resolves them."""

from __future__ import annotations

import os.path
import re
import stat
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from skyd.skyignore import IGNORE_FILE
from skyd.spec.fields import FieldReader, Problems, as_text
from skyd.spec.limits import directory_size, human_bytes, text_problem
from skyd.spec.storage import StorageMount, bucket_mount, is_bucket_url, storage_object
from skyd.spec.task import GitWorkdir
from skyd.spec.values import describe

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_GIT_URL = re.compile(r"^(https?://|ssh://|git://|file://|[\w.\-]+@[\w.\-]+:)\S+$")


class _PathOptions(Protocol):
    @property
    def lenient(self) -> bool: ...
    @property
    def max_workdir_bytes(self) -> int: ...


class FileFields:
    """The task parser's file fields; the parser supplies `problems`, `options`, `base_dir`."""

    problems: Problems
    options: _PathOptions
    base_dir: Path | None

    def _workdir_field(self, value: object, task: dict[str, Any]) -> None:
        if isinstance(value, Mapping):
            task["workdir_git"] = self._git_workdir(value)
        else:
            task["workdir"] = self._workdir(value)

    def _git_workdir(self, value: Mapping[object, object]) -> GitWorkdir:
        """SkyPilot's `workdir: {url: …, ref: …}`: the repository is cloned as the workdir."""
        reader = FieldReader(self.problems, "workdir", value, ("url", "ref"))
        url, ref = reader.take("url"), reader.take("ref")
        reader.finish()
        if not isinstance(url, str) or not _GIT_URL.match(url.strip()):
            raise self.problems.at(
                "workdir.url",
                f"{describe(url)} is not a git repository URL; write https://…, ssh://…, "
                "git@host:path or file://…",
            )
        if ref is not None and (not isinstance(ref, str | int) or not str(ref).strip()):
            raise self.problems.at("workdir.ref", f"{describe(ref)} is not a branch, tag or commit")
        for text in (str(url), str(ref or "")):
            if (problem := text_problem(text, what="the value")) or text.startswith("-"):
                raise self.problems.at("workdir", problem or f"{text!r} may not start with -")
        return GitWorkdir(url=url.strip(), ref=str(ref).strip() if ref is not None else None)

    def _workdir(self, value: object) -> str:
        resolved = self._local_path("workdir", value, directory=True)
        if self.base_dir is not None and not self.options.lenient and Path(resolved).is_dir():
            limit = self.options.max_workdir_bytes
            size = directory_size(Path(resolved), stop_after=limit)
            if size > limit:
                raise self.problems.at(
                    "workdir",
                    f"{resolved} holds more than {human_bytes(limit)} (counted "
                    f"{human_bytes(size)} before stopping); the workdir is copied for every "
                    f"job: list what the job does not need (data, checkpoints, virtualenvs) "
                    f"in {resolved}/{IGNORE_FILE}, or put data in file_mounts",
                )
        return resolved

    def _local_path(self, path: str, value: object, *, directory: bool) -> str:
        text = as_text(self.problems, path, value, what="a local path")
        problem = text_problem(text, what="the path")
        if problem:
            raise self.problems.at(path, problem)
        if _URL.match(text):
            raise self.problems.at(
                path,
                f"{text!r}: cloud storage and URLs are not supported yet; use a local path",
            )
        if self.base_dir is None:
            return text
        resolved = Path(text).expanduser()
        if not resolved.is_absolute():
            resolved = self.base_dir / resolved
        resolved = Path(_normalized(resolved))
        try:
            found = resolved.stat()
        except FileNotFoundError:
            self.problems.at_run_time(
                self.problems.at(path, f"{text!r} does not exist (looked at {resolved})")
            )
            return str(resolved)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise self.problems.at(
                path, f"{text!r} cannot be read (looked at {resolved}): {reason}"
            ) from None
        if directory and not stat.S_ISDIR(found.st_mode):
            raise self.problems.at(path, f"{text!r} is not a directory (looked at {resolved})")
        return str(resolved)

    def _file_mounts(self, value: object, envs: Mapping[str, str], task: dict[str, Any]) -> None:
        """Local copies into `task["file_mounts"]`, buckets into `task["storage_mounts"]`."""
        problems = self.problems
        if not isinstance(value, Mapping):
            raise problems.at(
                "file_mounts", f"{describe(value)} is not a mapping; write REMOTE_PATH: LOCAL_PATH"
            )
        mounts: dict[str, str] = {}
        buckets: dict[str, StorageMount] = {}
        for remote, local in value.items():
            path = f"file_mounts.{remote}"
            with problems.guard():
                if not isinstance(remote, str) or not remote.strip():
                    raise problems.at(
                        path, f"{describe(remote)} is not a remote path; quote it", of_key=True
                    )
                dest = _destination(problems, path, _substitute(remote.strip(), envs))
                if dest in mounts or dest in buckets:
                    raise problems.at(path, f"{dest!r} is mounted twice; keep one", of_key=True)
                if isinstance(local, Mapping):
                    substituted = {
                        key: _substitute(item, envs) if isinstance(item, str) else item
                        for key, item in local.items()
                    }
                    buckets[dest] = storage_object(
                        problems,
                        path,
                        substituted,
                        lambda where, text: self._local_path(where, text, directory=True),
                    )
                    continue
                if isinstance(local, str):
                    local = _substitute(local, envs)
                    if is_bucket_url(local.strip()):
                        buckets[dest] = bucket_mount(problems, path, local.strip())
                        continue
                mounts[dest] = self._local_path(path, local, directory=False)
        task["file_mounts"] = mounts
        if buckets:
            task["storage_mounts"] = buckets


def _substitute(text: str, envs: Mapping[str, str]) -> str:
    """`$VAR` / `${VAR}` from the task's envs, as SkyPilot fills file_mounts at parse time."""
    return string.Template(text).safe_substitute(envs) if "$" in text else text


def _destination(problems: Problems, path: str, dest: str) -> str:
    """A file mount's destination, normalized; relative ones (`x`, `~/x`) stay inside the
    job's directory, so `../../x` is refused rather than written outside it."""
    problem = text_problem(dest, what="the destination")
    if problem:
        raise problems.at(path, problem, of_key=True)
    home = dest == "~" or dest.startswith("~/")
    if dest.startswith("~") and not home:
        raise problems.at(
            path, f"{dest!r}: another user's home (~name) is not allowed; use ~/PATH", of_key=True
        )
    relative = dest[2:] if home else dest
    if relative.startswith("/"):
        normalized = os.path.normpath(relative)
        if normalized in ("/", "//"):
            raise problems.at(
                path, "the destination cannot be / itself; name a directory", of_key=True
            )
        return normalized
    normalized = os.path.normpath(relative or ".")
    if normalized == ".." or normalized.startswith("../"):
        raise problems.at(
            path,
            f"{dest!r} leads outside the job's directory; write a path inside it "
            "(e.g. data/x) or an absolute one (/data/x)",
            of_key=True,
        )
    if normalized == ".":
        raise problems.at(
            path, f"{dest!r} is the workdir itself; name a path inside it", of_key=True
        )
    return f"~/{normalized}" if home else normalized


def _normalized(path: Path) -> str:
    # Collapse `..` without resolving symlinks: the user named this path, not its target.
    return os.path.normpath(path)
