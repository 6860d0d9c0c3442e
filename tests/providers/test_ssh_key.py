"""The daemon's login key: its public half read or derived, and a clear error otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.providers.ssh_key import public_key_of
from skyd.testing.fake_vm import write_key_pair


def test_public_half_is_read_or_derived(tmp_path: Path) -> None:
    line = write_key_pair(tmp_path / "id", "me")
    assert public_key_of(tmp_path / "id") == line
    (tmp_path / "id.pub").unlink()
    derived = public_key_of(tmp_path / "id")
    assert derived.split()[:2] == line.split()[:2]


def test_a_missing_or_foreign_key_names_the_setting_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\[cloud_ssh\] key_path: cannot read"):
        public_key_of(tmp_path / "nope")
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(ValueError, match="ssh-keygen -t ed25519"):
        public_key_of(tmp_path / "junk")
