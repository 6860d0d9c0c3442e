"""Reading requests: path parts, query strings and JSON bodies checked by pydantic models, every
refusal a 400 `{code, message, field}` that names the field, the value and the fix."""

from __future__ import annotations

import pwd
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from skyd.errors import SpecError

INT64_MAX = 2**63 - 1  # SQLite's INTEGER: ids, offsets and sequence numbers live there
UID_MAX = 2**32 - 2  # uid_t; (uid_t)-1 means "no user"

Int64 = Annotated[int, Field(ge=0, le=INT64_MAX)]
RowId = Annotated[int, Field(ge=1, le=INT64_MAX, description="a positive whole number")]
UserRef = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}$",
        description="a user name or a numeric uid",
    ),
]

ModelT = TypeVar("ModelT", bound=BaseModel)

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() also accepts '¹' and '٣'
_SHOWN = 60  # characters of a bad value quoted back
_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


class BadRequest(SpecError):
    """A request the API refuses before acting on it (HTTP 400; nothing was changed)."""

    code = "bad_request"


class Strict(BaseModel):
    """A JSON request body: JSON types as declared (no "1" for 1, no false for 0), unknown
    fields refused, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Query(BaseModel):
    """Path parts or a query string: text read as the declared type ("12" → 12), unknown
    query parameters ignored (as web APIs do)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _described(error: ErrorDetails, model: type[BaseModel], where: str) -> tuple[str, str]:
    """(field, message) of one pydantic error, phrased for a person."""
    # the field and list indexes; not the union member tags pydantic adds ("float", "str")
    loc = [str(p) for i, p in enumerate(error["loc"]) if i == 0 or isinstance(p, int)]
    field = ".".join(loc) or where
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(model.model_fields))
        return field, f"{field}: unknown field; allowed: {allowed}"
    if error["type"] == "json_invalid":
        return where, f"{where}: not valid JSON ({error['ctx'].get('error', 'parse error')})"
    if error["type"] == "missing":
        return field, f"{field}: required"
    described = model.model_fields.get(loc[0]) if loc else None
    if error["type"] == "string_pattern_mismatch" and described and described.description:
        shown = _shown(error.get("input"))
        return field, f"{field}: {shown} is not valid; {field} is {described.description}"
    value = _shown(error.get("input"))
    msg = error["msg"]
    msg = msg[:1].lower() + msg[1:]
    if error["type"] in ("int_parsing", "int_type", "int_from_float"):
        return field, f"{field}: {value} is not a whole number"
    if error["type"] in _RANGE:
        return field, f"{field}: {value} is out of range: {msg.removeprefix('input ')}"
    if error["type"] == "bool_parsing":
        return field, f"{field}: {value} is not a yes/no flag; use 1 or 0 (true, false)"
    return field, f"{field}: {msg}, got {value}"


def refusal(exc: ValidationError, model: type[BaseModel], where: str) -> BadRequest:
    field, message = _described(exc.errors()[0], model, where)
    return BadRequest(message + "; nothing was changed", field)


def path_params(request: web.Request, model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate(dict(request.match_info))
    except ValidationError as exc:
        raise refusal(exc, model, "path") from None


def query_params(request: web.Request, model: type[ModelT]) -> ModelT:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise refusal(exc, model, "query") from None


async def json_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """The body as `model`; an empty body is `{}`. pydantic's own JSON parser reads it: it
    bounds nesting depth (a 100k-deep body is an error, not a RecursionError) and big ints."""
    raw = await request.read() if request.can_read_body else b""
    if not raw.strip():
        raw = b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise refusal(exc, model, "body") from None


def uid_of(field: str, text: str) -> int:
    """A user name or numeric uid (ASCII digits, within uid_t) as a uid."""
    if _DIGITS.fullmatch(text):
        uid = int(text)
        if uid > UID_MAX:
            raise BadRequest(f"{field}: uid {_shown(text)} is out of range (0 to {UID_MAX})", field)
        return uid
    try:
        return pwd.getpwnam(text).pw_uid
    except (KeyError, ValueError):  # ValueError: a NUL in the name
        raise BadRequest(
            f"{field}: no such user {_shown(text)}; give a user name or a numeric uid", field
        ) from None


def task_base_dir(base_dir: str, task_yaml: str | None, command: list[str] | None) -> Path:
    """A task body's `base_dir`, once it is absolute and the body gives exactly one of a task
    file's text and a command."""
    path = Path(base_dir)
    if not path.is_absolute():
        raise BadRequest(f"base_dir: must be an absolute path, got {base_dir[:80]!r}", "base_dir")
    if (task_yaml is None) == (command is None):
        raise BadRequest("task_yaml: give exactly one of task_yaml and command", "task_yaml")
    return path
