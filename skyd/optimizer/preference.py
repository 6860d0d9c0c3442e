"""Region preference: which of several equally good candidates a lab would rather use.

Equal prices are common (Lambda prices a type the same in all 17 regions; AWS on-demand is
the same in every zone of a region), so the tie-break decides where many jobs run. Ranks,
lower first: the configured home regions in the order given, then regions in the home
countries, then the rest. Names never decide before this does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase


def region_ranks(
    regions: Iterable[tuple[str, str, str | None]],
    home_regions: Sequence[str] = (),
    home_countries: Sequence[str] = (),
) -> dict[str, int]:
    """ "cloud/region" -> rank for every (cloud, region, country) given.

    `home_regions` are glob patterns matched against "cloud/region" or the bare region
    ("aws/us-east-1", "us-east-*", "gcp/europe-west*"); the first that matches gives the rank.
    """
    countries = {code.upper() for code in home_countries}
    after_home = len(home_regions)
    ranks: dict[str, int] = {}
    for cloud, region, country in regions:
        scope = f"{cloud}/{region}"
        rank = next(
            (
                i
                for i, pattern in enumerate(home_regions)
                if fnmatchcase(scope, pattern) or fnmatchcase(region, pattern)
            ),
            None,
        )
        if rank is None:
            rank = after_home if country is not None and country in countries else after_home + 1
        ranks[scope] = rank
    return ranks
