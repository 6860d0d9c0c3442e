"""What each route takes and answers, declared beside its handler with `@endpoint(...)`.

The handlers validate with the same pydantic models named here, and skyd/api/openapi.py builds
the OpenAPI document from this registry, so the document cannot drift from the code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

HandlerT = TypeVar("HandlerT", bound=Callable[..., Any])


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    tag: str
    path_params: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | Any = None  # a model, a list[...] of one, or None
    status: int = 200
    content_type: str = "application/json"
    errors: tuple[int, ...] = (400,)
    description: str = ""
    extra_content: dict[str, Any] = field(default_factory=dict)


ENDPOINTS: dict[tuple[str, str], Endpoint] = {}


def endpoint(method: str, path: str, summary: str, **kwargs: Any) -> Callable[[HandlerT], HandlerT]:
    """Record `method path`'s contract; the handler itself is returned unchanged."""

    def register(handler: HandlerT) -> HandlerT:
        ENDPOINTS[(method.upper(), path)] = Endpoint(method.upper(), path, summary, **kwargs)
        return handler

    return register
