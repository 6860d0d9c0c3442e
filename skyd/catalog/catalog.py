"""The Catalog: every offering of the loaded clouds, indexed once, answering placement queries."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

from skyd.catalog.locate import candidate_dirs, default_catalog_dir
from skyd.catalog.matching import CompiledFilter, candidate_order, markets
from skyd.catalog.names import AcceleratorNames
from skyd.catalog.reader import RegionLocation, read_offers, read_regions
from skyd.catalog.table import CandidateTable
from skyd.errors import CatalogError
from skyd.model import Candidate, ExclusionReason, Offer, OfferFilter

REGIONS_FILE = "regions.csv"
EGRESS_FILE = "egress.csv"  # data-transfer prices (skyd.optimizer.egress), not a cloud


class Catalog:
    """Offerings of one or more clouds (immutable once built).

    Build it with `Catalog.load()` (files) or `Catalog(offers, regions)` (records, e.g.
    in tests). Prices are integer micro-dollars per hour, as in skyd.model.Offer.
    """

    def __init__(
        self,
        offers: Iterable[Offer],
        regions: Mapping[tuple[str, str], RegionLocation] | None = None,
        *,
        clouds: Iterable[str] | None = None,
        source: Path | None = None,
    ) -> None:
        self._offers = tuple(offers)
        self._regions = dict(regions or {})
        self.source = source
        self._by_key: dict[str, Offer] = {}
        self._by_accelerator: dict[tuple[str, int], list[Offer]] = {}
        self._by_instance_type: dict[str, list[Offer]] = {}
        self._by_cloud: dict[str, list[Offer]] = {cloud: [] for cloud in clouds or ()}
        for offer in self._offers:
            key = offer.key
            if key in self._by_key:
                raise CatalogError(f"offering {key} is listed twice")
            self._by_key[key] = offer
            self._by_accelerator.setdefault(
                (offer.accelerator_name, offer.accelerator_count), []
            ).append(offer)
            self._by_instance_type.setdefault(offer.instance_type, []).append(offer)
            self._by_cloud.setdefault(offer.cloud, []).append(offer)
        self._names = AcceleratorNames(name for name, _ in self._by_accelerator)
        # Built on the first unindexed query; the catalog never changes afterwards.
        self._sorted_candidates: tuple[Candidate, ...] | None = None
        self._table: CandidateTable | None = None

    # --- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: Path | None = None, clouds: Collection[str] | None = None) -> Catalog:
        """Load `<cloud>.csv` files (all of them, or only `clouds`) and regions.csv.

        `directory` None means the shipped catalogs (see skyd.catalog.locate). Without a
        regions.csv in the directory, the shipped region table is used. Any bad file raises
        CatalogError naming file, line, column and value, and nothing is returned.
        """
        root = default_catalog_dir() if directory is None else Path(directory)
        files = catalog_files(root)
        if clouds is not None:
            wanted = sorted({cloud.lower() for cloud in clouds})
            unknown = [cloud for cloud in wanted if cloud not in files]
            if unknown:
                raise CatalogError(
                    f"no catalog for {', '.join(unknown)} in {root} "
                    f"(have: {', '.join(sorted(files)) or 'none'}); "
                    f"add <cloud>.csv there or drop the cloud from the list"
                )
            files = {cloud: files[cloud] for cloud in wanted}
        offers: list[Offer] = []
        for cloud, path in files.items():
            offers.extend(read_offers(path, cloud))
        return cls(offers, _region_table(root), clouds=files, source=root)

    # --- what is in it ------------------------------------------------------------------------

    @property
    def offers(self) -> Sequence[Offer]:
        return self._offers

    @property
    def clouds(self) -> list[str]:
        return sorted(self._by_cloud)

    def accelerator_names(self) -> list[str]:
        """Canonical accelerator names, sorted case-insensitively."""
        return self._names.names

    def normalize_accelerator(self, name: str) -> str:
        """Canonical spelling of an accelerator name ('a100-80gb' → 'A100-80GB').

        Raises UnknownAcceleratorError, with "did you mean" suggestions, for unknown names.
        """
        return self._names.normalize(name)

    def extended(self, offers: Iterable[Offer], clouds: Iterable[str] = ()) -> Catalog:
        """This catalog plus `offers` (e.g. a provider's own machines), keeping the region table."""
        extra = [offer for offer in offers if offer.key not in self._by_key]
        return Catalog(
            (*self._offers, *extra),
            self._regions,
            clouds=(*self._by_cloud, *clouds),
            source=self.source,
        )

    def with_regions_of(self, other: Catalog) -> Catalog:
        """This catalog using `other`'s region table (countries, continents)."""
        self._regions = dict(other._regions)
        self._table = None  # its country column came from the old table
        return self

    def offer_by_key(self, key: str) -> Offer | None:
        """The offering with this Offer.key, if the catalog has it."""
        return self._by_key.get(key)

    def country_of(self, cloud: str, region: str) -> str | None:
        location = self._regions.get((cloud, region))
        return location.country if location is not None else None

    def continent_of(self, cloud: str, region: str) -> str | None:
        location = self._regions.get((cloud, region))
        return location.continent if location is not None else None

    # --- queries ------------------------------------------------------------------------------

    def query(self, f: OfferFilter) -> list[Candidate]:
        """Feasible (offer, market) pairs, cheapest first; ties broken by cloud, region,
        zone, instance type, then on-demand before spot."""
        compiled = self._compile(f)
        if not compiled.accelerators and f.instance_type is None and compiled.cloud is None:
            return self._scan(compiled)
        found = []
        for offer in self._pool(compiled):
            country = self.country_of(offer.cloud, offer.region) if compiled.countries else None
            if compiled.offer_exclusion(offer, country) is not None:
                continue
            for spot, price, market_reason in markets(offer, f.spot):
                if compiled.market_exclusion(offer, spot, price, market_reason) is None:
                    found.append(Candidate(offer, spot, price))
        found.sort(key=candidate_order)
        return found

    def candidate_table(self) -> CandidateTable:
        """Every candidate as columns, built on first use (the catalog never changes)."""
        if self._table is None:
            self._table = CandidateTable(self._offers, self.country_of)
        return self._table

    def explain(self, f: OfferFilter) -> Sequence[tuple[Candidate, ExclusionReason | None]]:
        """Every candidate matching the accelerator / instance-type part of `f`, each with
        the first reason it is excluded (None = feasible); feasible ones first, then by
        price. An offering without the requested market appears through its other market
        with NO_SPOT_MARKET / NOT_PRICED."""
        if f.zone is None:
            # answered from the columns: the same rows in the same order, without a Python
            # loop over every offering (a CPU job matches most of the catalog)
            return self.candidate_table().explain(self._compile(f))
        return self.explain_each(f)

    def explain_each(self, f: OfferFilter) -> list[tuple[Candidate, ExclusionReason | None]]:
        """`explain`, offering by offering (any filter; zone pins need it)."""
        compiled = self._compile(f)
        rows = []
        for offer in self._relevant(compiled):
            country = self.country_of(offer.cloud, offer.region)
            for spot, price, market_reason in markets(offer, f.spot):
                reason = compiled.exclusion(offer, spot, price, market_reason, country)
                rows.append((Candidate(offer, spot, price), reason))
        rows.sort(key=lambda row: (row[1] is not None, candidate_order(row[0])))
        return rows

    def cheapest_per_accelerator(
        self,
        spot: bool | None,
        cloud: str | None = None,
        region: str | None = None,
        *,
        accelerator: tuple[str, int | None] | None = None,
        per_region: bool = False,
        spot_prices: Mapping[str, int] | None = None,
    ) -> list[Candidate]:
        """The cheapest candidate per (accelerator, count, cloud[, region]) — what `skyctl
        prices` shows. `spot` None considers both markets; `accelerator` (canonical name,
        count or None for any) narrows it; `spot_prices` (by Offer.key) are live prices that
        replace the catalog's. CPU-only offerings are left out."""
        cloud = cloud.lower() if cloud else None
        live = spot_prices or {}
        best: dict[tuple[str, int, str, str], Candidate] = {}
        for (name, count), offers in self._by_accelerator.items():
            if not name:
                continue
            if accelerator is not None and (
                name != accelerator[0] or accelerator[1] not in (None, count)
            ):
                continue
            for offer in offers:
                if (cloud is not None and offer.cloud != cloud) or (
                    region is not None and offer.region != region
                ):
                    continue
                group = (name, count, offer.cloud, offer.region if per_region else "")
                for market_spot, listed, reason in markets(offer, spot):
                    if reason is not None:
                        continue
                    price = live.get(offer.key, listed) if market_spot else listed
                    held = best.get(group)
                    # Compare full orders only on a price tie; most offers lose on price.
                    if held is None or price < held.hourly_price_micros:
                        best[group] = Candidate(offer, market_spot, price)
                    elif price == held.hourly_price_micros:
                        candidate = Candidate(offer, market_spot, price)
                        if candidate_order(candidate) < candidate_order(held):
                            best[group] = candidate
        return sorted(
            best.values(),
            key=lambda c: (
                c.offer.accelerator_name.casefold(),
                c.offer.accelerator_count,
                candidate_order(c),
            ),
        )

    # --- internals ----------------------------------------------------------------------------

    def _compile(self, f: OfferFilter) -> CompiledFilter:
        return CompiledFilter.compile(f, self._names.lookup)

    def _relevant(self, compiled: CompiledFilter) -> Iterable[Offer]:
        """Offers matching the accelerator and instance-type part of the request."""
        instance_type = compiled.source.instance_type
        if compiled.accelerators:
            offers: Iterable[Offer] = [
                offer
                for wanted in sorted(compiled.accelerators)
                for offer in self._by_accelerator.get(wanted, ())
            ]
            if instance_type is not None:
                offers = [o for o in offers if o.instance_type == instance_type]
            return offers
        if instance_type is not None:
            return self._by_instance_type.get(instance_type, ())
        return self._offers

    def _pool(self, compiled: CompiledFilter) -> Iterable[Offer]:
        """The smallest indexed set of offers that can hold every feasible one."""
        if compiled.accelerators or compiled.source.instance_type is not None:
            return self._relevant(compiled)
        if compiled.cloud is not None:
            return self._by_cloud.get(compiled.cloud, ())
        return self._offers

    def _scan(self, compiled: CompiledFilter) -> list[Candidate]:
        """A query no index narrows (e.g. CPU-only): filter every candidate, pre-sorted once."""
        if self._sorted_candidates is None:
            every = [
                Candidate(offer, spot, price)
                for offer in self._offers
                for spot, price, _ in markets(offer, None)
            ]
            every.sort(key=candidate_order)
            self._sorted_candidates = tuple(every)
        spot = compiled.source.spot
        countries = bool(compiled.countries)
        verdicts: dict[int, bool] = {}
        found = []
        for candidate in self._sorted_candidates:
            if spot is not None and candidate.spot is not spot:
                continue
            offer = candidate.offer
            admitted = verdicts.get(id(offer))
            if admitted is None:
                country = self.country_of(offer.cloud, offer.region) if countries else None
                admitted = verdicts[id(offer)] = compiled.offer_exclusion(offer, country) is None
            if admitted and (
                compiled.market_exclusion(
                    offer, candidate.spot, candidate.hourly_price_micros, None
                )
                is None
            ):
                found.append(candidate)
        return found


def catalog_files(directory: Path) -> dict[str, Path]:
    """cloud → `<cloud>.csv` in `directory` (regions.csv, egress.csv and hidden files excluded)."""
    if not directory.is_dir():
        raise CatalogError(
            f"catalog directory {directory} does not exist or is not a directory; "
            "pass a directory holding <cloud>.csv files"
        )
    files = {
        path.stem.lower(): path
        for path in sorted(directory.glob("*.csv"))
        if path.name not in (REGIONS_FILE, EGRESS_FILE)
        and not path.name.startswith(".")
        and path.is_file()
    }
    if not files:
        raise CatalogError(f"no catalog files (<cloud>.csv) in {directory}")
    return files


def _region_table(root: Path) -> dict[tuple[str, str], RegionLocation]:
    """regions.csv of `root`, else the first one found where shipped catalogs live."""
    for directory in (root, *candidate_dirs()):
        path = directory / REGIONS_FILE
        if path.is_file():
            return read_regions(path)
    return {}
