"""Settings: the shipped system config loads; bad files name the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from skyd.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]


def test_shipped_system_config_loads() -> None:
    settings = load_settings(REPO / "systemd" / "skyd.toml")
    assert settings.state_dir == Path("/var/lib/skyd")
    assert settings.socket_mode == 0o660 and settings.socket_group == "skyd"
    assert settings.local.run_as_owner is True


def test_command_line_overrides_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        REPO / "systemd" / "skyd.toml", state_dir=tmp_path, socket_path=tmp_path / "s.sock"
    )
    assert settings.state_dir == tmp_path and settings.socket_path == tmp_path / "s.sock"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sokcet_mode = 1\n", "sokcet_mode: unknown setting"),
        ("[local]\nslots = 'many'\n", "local.slots: expected int"),
        ("log_format = \n", "skyd.toml"),
        ("[locale]\nx = 1\n", "locale: unknown setting"),
        ("[market]\noffers_refresh_seconds = 0\n", "offers_refresh_seconds: 0.0 must be"),
        ("[cloud_ssh]\ncheckpoint_sync_s = 0\n", "cloud_ssh.checkpoint_sync_s: 0.0 must be"),
        (
            "[local]\ncancel_write_back_seconds = 0\n",
            "local.cancel_write_back_seconds: 0.0 must be between 1 and 86400",
        ),
        (
            "[cloud_ssh]\ncheckpoint_sync_s = 60\ncheckpoint_sync_max_s = 30\n",
            r"checkpoint_sync_max_s: 30.0 must be between checkpoint_sync_s \(60\)",
        ),
    ],
)
def test_bad_config_is_refused_with_the_key_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "skyd.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
