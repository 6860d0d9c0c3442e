"""The SQLite state store: one file, WAL, forward-only migrations, one module per aggregate."""

from skyd.store.db import Store, open_store

__all__ = ["Store", "open_store"]
