"""A fake of the Azure Retail Prices API (`GET /api/retail/prices`), paginated like the real one.

It evaluates the subset of OData `$filter` the real API documents for simple
queries (`field eq 'value'` joined by `and`), pages with `$skip`, and links pages
with an absolute `NextPageLink` that repeats the query, as Azure does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from skyd.testing.pricing_servers.faults import FaultPlan
from skyd.testing.pricing_servers.server import LoopbackServer

PRICES_PATH = "/api/retail/prices"
# Filter names that differ from the Item field they select on.
_FILTER_FIELDS = {"pricetype": "type"}
_CLAUSE = re.compile(r"\s*(\w+)\s+eq\s+'([^']*)'\s*", re.IGNORECASE)


def parse_odata_filter(text: str) -> list[tuple[str, str]]:
    """`a eq 'x' and b eq 'y'` → [(field a, x), (field b, y)]; ValueError for anything else."""
    clauses = []
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise ValueError(f"unsupported $filter clause {part!r}")
        name = match.group(1)
        clauses.append((_FILTER_FIELDS.get(name.lower(), name), match.group(2)))
    return clauses


class AzureRetailServer(LoopbackServer):
    """Serves `items` (dicts in the API's Item shape), `page_size` per page."""

    def __init__(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        page_size: int = 100,
        faults: FaultPlan | None = None,
    ) -> None:
        super().__init__(faults)
        self.items = list(items)
        self.page_size = page_size

    @property
    def prices_url(self) -> str:
        return self.url + PRICES_PATH

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PRICES_PATH, self._prices)]

    async def _prices(self, request: web.Request) -> web.Response:
        skip = int(request.query.get("$skip", "0"))
        fault = self.begin(request, "prices", skip // self.page_size + 1)
        if fault is not None:
            return fault
        if "api-version" not in request.query:
            return _error(400, "InvalidApiVersionParameter", "api-version is required")
        try:
            clauses = parse_odata_filter(request.query.get("$filter", ""))
        except ValueError as exc:
            return _error(400, "InvalidFilter", str(exc))
        matching = [
            item
            for item in self.items
            # OData string comparison in this API is case-insensitive.
            if all(str(item.get(f, "")).lower() == v.lower() for f, v in clauses)
        ]
        page = matching[skip : skip + self.page_size]
        next_link = None
        if skip + self.page_size < len(matching):
            query = {k: v for k, v in request.query.items() if k != "$skip"}
            query["$skip"] = str(skip + self.page_size)
            next_link = f"{self.prices_url}?{urlencode(query)}"
        return web.json_response(
            {
                "BillingCurrency": "USD",
                "CustomerEntityId": "Default",
                "CustomerEntityType": "Retail",
                "Items": page,
                "NextPageLink": next_link,
                "Count": len(page),
            }
        )


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"Error": {"Code": code, "Message": message}}, status=status)
