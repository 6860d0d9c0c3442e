"""skyd's live terminal dashboard (Textual): `run_dashboard(socket_path)` is the entry point."""

from __future__ import annotations

__all__ = ["run_dashboard"]


def run_dashboard(socket_path: str) -> int:
    """Run the dashboard until the user quits (imports Textual only when called)."""
    from tui.app import run_dashboard as run

    return run(socket_path)
