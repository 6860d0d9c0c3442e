"""Finds the directory of the shipped catalogs (environment, source checkout, installed data)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import skyd
from skyd.errors import CatalogError

CATALOG_DIR_ENV = "SKYD_CATALOG_DIR"


def candidate_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    """Where shipped catalogs are looked for, in order."""
    env = os.environ if environ is None else environ
    dirs = []
    if env.get(CATALOG_DIR_ENV):
        dirs.append(Path(env[CATALOG_DIR_ENV]))
    dirs.append(Path(skyd.__file__).resolve().parents[1] / "catalogs")
    dirs.append(Path(sys.prefix) / "share" / "skyd" / "catalogs")
    return dirs


def default_catalog_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The shipped catalog directory: $SKYD_CATALOG_DIR, the checkout's catalogs/, or
    sys.prefix/share/skyd/catalogs. An explicitly set $SKYD_CATALOG_DIR must exist."""
    env = os.environ if environ is None else environ
    dirs = candidate_dirs(env)
    if env.get(CATALOG_DIR_ENV):
        if not dirs[0].is_dir():
            raise CatalogError(
                f"${CATALOG_DIR_ENV} is {env[CATALOG_DIR_ENV]!r}, which is not a directory; "
                "point it at a directory of <cloud>.csv catalogs or unset it"
            )
        return dirs[0]
    for directory in dirs:
        if directory.is_dir():
            return directory
    raise CatalogError(
        "no shipped catalogs found (looked in "
        + ", ".join(str(d) for d in dirs)
        + f"); set ${CATALOG_DIR_ENV} to a directory of <cloud>.csv files"
    )
