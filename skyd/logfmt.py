"""Logging to stderr: JSON lines for journald and log shippers, plain lines for a person."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
FORMATS = ("auto", "json", "text")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class HumanLines(logging.Formatter):
    """`10:47:33 INFO  skyd.daemon: listening  socket=/run/skyd/skyd.sock` in local time."""

    def __init__(self) -> None:
        super().__init__(datefmt="%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record, self.datefmt)} {record.levelname:<7} "
            f"{record.name}: {record.getMessage()}"
        )
        extras = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        if extras:
            line += f"  {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {key: value for key, value in record.__dict__.items() if key not in _STANDARD}


def resolve_format(fmt: str, stream: TextIO, environ: Mapping[str, str]) -> str:
    """`auto`: JSON under systemd (JOURNAL_STREAM) or into a pipe or file; text on a terminal."""
    if fmt != "auto":
        return fmt
    if environ.get("JOURNAL_STREAM"):
        return "json"
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return "text" if interactive else "json"


def setup_logging(fmt: str = "auto", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if resolve_format(fmt, sys.stderr, os.environ) == "json":
        handler.setFormatter(JsonLines())
    else:
        handler.setFormatter(HumanLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # APScheduler narrates every job run at INFO; skyd logs what matters itself
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
