"""The error a catalog fetch raises when it cannot produce a complete, valid catalog."""

from __future__ import annotations

from skyd.errors import CatalogError


class CatalogFetchError(CatalogError):
    """A pricing API failed, answered garbage, or its answer did not make a valid catalog.

    Raised before anything replaces the existing catalog file, so the last good
    catalog always survives a failed fetch.
    """

    code = "catalog_fetch_failed"
