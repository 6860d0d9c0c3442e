"""skyctl's own usage error and the wording of every error message it prints."""

from __future__ import annotations

from skyctl.client import ApiError, DaemonUnavailableError

PROGRAM = "skyctl"


class UsageError(Exception):
    """The command line asks for something skyctl cannot do as written (exit status 2)."""


def api_error_text(error: ApiError) -> str:
    """The daemon's message, with the offending field added when the message does not name it."""
    text = error.message
    if error.field and error.field not in text:
        text += f" (field: {error.field})"
    return text


def unavailable_text(error: DaemonUnavailableError) -> str:
    if error.permission_denied:
        return (
            f"cannot talk to the skyd daemon at {error.socket_path}: permission denied. "
            "Ask an administrator to add you to the 'skyd' group, then log in again."
        )
    return (
        f"cannot reach the skyd daemon at {error.socket_path} ({error.reason}). "
        "Is it running? Start it with `skyd run` (or `systemctl start skyd` on a server), "
        "or point skyctl at another daemon with --socket PATH or SKYD_SOCKET."
    )


def error_line(text: str) -> str:
    """One `skyctl: error:` line per line of `text` (a task file may have several problems)."""
    return "".join(f"{PROGRAM}: error: {line}\n" for line in text.splitlines() or [""])
