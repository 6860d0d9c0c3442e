"""The gang launch request the placement tests make on every cloud (attempt 1, daemon lab-a)."""

from __future__ import annotations

from skyd.model import LaunchRequest, Offer
from skyd.providers.base import TAG_DAEMON


def gang_request(offer: Offer, job_id: int, nodes: int = 2) -> LaunchRequest:
    return LaunchRequest(
        job_id=job_id,
        attempt=1,
        client_token=f"skyd-{job_id}-1",
        offer=offer,
        spot=False,
        num_nodes=nodes,
        tags={TAG_DAEMON: "lab-a"},
    )
