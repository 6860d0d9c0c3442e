"""Where skyctl looks for the daemon's socket."""

from __future__ import annotations

from pathlib import Path

from skyctl.socket_path import SYSTEM_SOCKET, resolve_socket_path


def test_explicit_socket_wins_over_environment(tmp_path: Path) -> None:
    env = {"SKYD_SOCKET": "/env.sock", "XDG_RUNTIME_DIR": str(tmp_path)}
    assert resolve_socket_path("/given.sock", env) == "/given.sock"


def test_skyd_socket_variable_wins_over_runtime_dir(tmp_path: Path) -> None:
    (tmp_path / "skyd").mkdir()
    (tmp_path / "skyd" / "skyd.sock").touch()
    env = {"SKYD_SOCKET": "/env.sock", "XDG_RUNTIME_DIR": str(tmp_path)}
    assert resolve_socket_path(None, env) == "/env.sock"


def test_user_socket_is_used_only_when_it_exists(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert resolve_socket_path(None, env) == SYSTEM_SOCKET
    (tmp_path / "skyd").mkdir()
    (tmp_path / "skyd" / "skyd.sock").touch()
    assert resolve_socket_path(None, env) == str(tmp_path / "skyd" / "skyd.sock")


def test_empty_values_fall_through_to_the_system_socket() -> None:
    assert resolve_socket_path("", {"SKYD_SOCKET": "", "XDG_RUNTIME_DIR": ""}) == SYSTEM_SOCKET
