"""Canonical accelerator names: case- and separator-insensitive lookup with "did you mean"."""

from __future__ import annotations

import re
from collections.abc import Iterable

from skyd.errors import UnknownAcceleratorError

_SEPARATORS = re.compile(r"[\s_-]+")


def loose_key(name: str) -> str:
    """'a100 80gb', 'A100_80GB' and 'a100-80gb' all give the same key."""
    return _SEPARATORS.sub("", name).casefold()


class AcceleratorNames:
    """The accelerator names a catalog knows, and how user spellings map onto them."""

    def __init__(self, canonical: Iterable[str]) -> None:
        self._names = sorted({name for name in canonical if name}, key=str.casefold)
        self._by_casefold = {name.casefold(): name for name in self._names}
        by_loose: dict[str, str | None] = {}
        for name in self._names:
            key = loose_key(name)
            # Two names differing only by separators stay reachable by their exact spelling.
            by_loose[key] = None if key in by_loose else name
        self._by_loose = {key: name for key, name in by_loose.items() if name is not None}

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def lookup(self, name: str) -> str | None:
        """The canonical spelling of `name`, or None if no catalog knows it."""
        text = name.strip()
        found = self._by_casefold.get(text.casefold())
        return found if found is not None else self._by_loose.get(loose_key(text))

    def normalize(self, name: str) -> str:
        """The canonical spelling of `name`; UnknownAcceleratorError with suggestions if none."""
        found = self.lookup(name)
        if found is not None:
            return found
        if not name.strip():
            raise UnknownAcceleratorError(
                "accelerator name is empty; write a name such as A100 or H100:8"
            )
        raise UnknownAcceleratorError(self._unknown_message(name))

    def _unknown_message(self, name: str) -> str:
        import difflib  # only paid for on the error path

        folded = {candidate.casefold(): candidate for candidate in self._names}
        close = difflib.get_close_matches(name.strip().casefold(), folded, n=3, cutoff=0.5)
        message = f"unknown accelerator {name!r}"
        if close:
            return message + "; did you mean " + " or ".join(repr(folded[c]) for c in close) + "?"
        return message + f"; known accelerators: {', '.join(self._names)}"
