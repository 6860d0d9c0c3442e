"""A fake of the AWS Price List bulk API: one EC2 offer file (`index.json`) per region."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from skyd.testing.pricing_servers.faults import FaultPlan
from skyd.testing.pricing_servers.server import LoopbackServer

OFFER_PATH = "/offers/v1.0/aws/AmazonEC2/current/{region}/index.json"


class AwsPriceListServer(LoopbackServer):
    """Serves `offers[region]` (a dict in the offer-file format); fault page = 1 per file."""

    def __init__(
        self, offers: Mapping[str, Mapping[str, Any]], *, faults: FaultPlan | None = None
    ) -> None:
        super().__init__(faults)
        self.offers = dict(offers)

    def routes(self) -> list[web.RouteDef]:
        return [web.get(OFFER_PATH, self._offer)]

    async def _offer(self, request: web.Request) -> web.Response:
        region = request.match_info["region"]
        fault = self.begin(request, f"offers/{region}", 1)
        if fault is not None:
            return fault
        offer = self.offers.get(region)
        if offer is None:
            # What CloudFront in front of the real bucket answers for an unknown key.
            return web.Response(
                status=403,
                text="<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
                content_type="application/xml",
            )
        return web.json_response(offer)
