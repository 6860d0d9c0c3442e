"""Forward-only named schema migrations: one `NNNN_name.sql` file each, applied in name order.

A migration is never edited once released; change the schema with a new file.
"""

from __future__ import annotations

from importlib import resources


def load_migrations() -> list[tuple[str, str]]:
    files = resources.files(__package__)
    found = [
        (entry.name.removesuffix(".sql"), entry.read_text())
        for entry in files.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)
