"""A fake EC2 Query API endpoint for live-market tests: DescribeAvailabilityZones and
DescribeSpotPriceHistory, answered in EC2's real XML with prices a test can change."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from aiohttp import web

_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"


@dataclass
class SpotPrice:
    instance_type: str
    zone_name: str
    price: str  # decimal dollars as EC2 writes them, e.g. "0.918000"
    at: dt.datetime


@dataclass
class FakeEc2Spot:
    """Zones of one region (name → id) and the current spot prices."""

    zones: dict[str, str]
    region: str = "us-east-1"
    prices: list[SpotPrice] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with a 503 first
    requests: list[str] = field(default_factory=list)

    def set_price(self, instance_type: str, zone_name: str, price: str, at: dt.datetime) -> None:
        self.prices = [
            p for p in self.prices if (p.instance_type, p.zone_name) != (instance_type, zone_name)
        ]
        self.prices.append(SpotPrice(instance_type, zone_name, price, at))

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        action = str(form.get("Action", ""))
        self.requests.append(action)
        if self.fail_next > 0:
            self.fail_next -= 1
            return _error(503, "Unavailable", "Service Unavailable")
        if action == "DescribeAvailabilityZones":
            items = "".join(
                f"<item><zoneName>{escape(name)}</zoneName><zoneId>{escape(zid)}</zoneId>"
                f"<zoneState>available</zoneState><regionName>{self.region}</regionName></item>"
                for name, zid in sorted(self.zones.items())
            )
            return _ok(action, f"<availabilityZoneInfo>{items}</availabilityZoneInfo>")
        if action == "DescribeSpotPriceHistory":
            wanted = {str(v) for k, v in form.items() if k.startswith("InstanceType.")}
            items = "".join(
                "<item>"
                f"<instanceType>{escape(p.instance_type)}</instanceType>"
                "<productDescription>Linux/UNIX</productDescription>"
                f"<spotPrice>{p.price}</spotPrice>"
                f"<timestamp>{p.at.strftime('%Y-%m-%dT%H:%M:%S.000Z')}</timestamp>"
                f"<availabilityZone>{escape(p.zone_name)}</availabilityZone>"
                "</item>"
                for p in self.prices
                if not wanted or p.instance_type in wanted
            )
            return _ok(action, f"<spotPriceHistorySet>{items}</spotPriceHistorySet><nextToken/>")
        return _error(
            400, "InvalidAction", f"The action {action} is not valid for this web service."
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return app


def _ok(action: str, body: str) -> web.Response:
    xml = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{_NS}">'
        f"<requestId>00000000-0000-0000-0000-000000000000</requestId>{body}</{action}Response>"
    )
    return web.Response(text=xml, content_type="text/xml")


def _error(status: int, code: str, message: str) -> web.Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{code}</Code><Message>{escape(message)}</Message></Error></Errors>"
        "<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
    )
    return web.Response(status=status, text=xml, content_type="text/xml")
