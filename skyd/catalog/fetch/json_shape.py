"""Pull typed fields out of decoded API JSON, failing with an error that names the field."""

from __future__ import annotations

from typing import Any, TypeVar

from skyd.catalog.fetch.errors import CatalogFetchError

T = TypeVar("T")


def typed_field(doc: Any, key: str, kind: type[T], where: str, default: T | None = None) -> T:
    """`doc[key]` checked to be a `kind`; `default` if absent and one is given."""
    if not isinstance(doc, dict):
        raise CatalogFetchError(
            f"{where}: expected a JSON object, got {type(doc).__name__}; "
            "the API's response format may have changed"
        )
    if key not in doc or doc[key] is None:
        if default is not None:
            return default
        raise CatalogFetchError(f"{where}: field {key!r} is missing from the response")
    value = doc[key]
    # bool is an int in Python, but never a valid number in these APIs.
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise CatalogFetchError(
            f"{where}: field {key!r} should be {kind.__name__}, got {type(value).__name__} "
            f"({str(value)[:60]!r})"
        )
    return value
