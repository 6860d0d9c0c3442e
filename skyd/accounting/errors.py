"""Errors of accounting requests: bad input (400, names the field) and over budget (403)."""

from __future__ import annotations

from skyd.errors import PermissionDeniedError, SpecError


class AccountingInputError(SpecError):
    """A pool, budget or limit request with a bad value; `field` names it (HTTP 400)."""

    code = "bad_request"


class BudgetExceededError(PermissionDeniedError):
    """A submit refused because it would exceed a budget or a per-user limit (HTTP 403)."""

    code = "over_budget"
