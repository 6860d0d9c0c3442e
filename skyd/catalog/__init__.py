"""Offering catalogs: load the shipped (or fetched) CSV files and answer placement queries.

from skyd.catalog import Catalog
catalog = Catalog.load()                      # shipped catalogs, all clouds
catalog.query(OfferFilter(accelerators=(("A100", 1),)))
"""

from skyd.catalog.catalog import Catalog, catalog_files
from skyd.catalog.instance_types import gce_machine_type
from skyd.catalog.locate import CATALOG_DIR_ENV, default_catalog_dir
from skyd.catalog.reader import OFFER_COLUMNS, REGION_COLUMNS, RegionLocation

__all__ = [
    "CATALOG_DIR_ENV",
    "OFFER_COLUMNS",
    "REGION_COLUMNS",
    "Catalog",
    "RegionLocation",
    "catalog_files",
    "default_catalog_dir",
    "gce_machine_type",
]
