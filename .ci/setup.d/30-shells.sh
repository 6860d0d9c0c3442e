#!/usr/bin/env bash
# zsh and fish, to check that `skyctl completion zsh|fish` load and complete in the real shells;
# tmux, to drive the dashboard in a real terminal (tests/tui/test_tui_tmux_session.py).
set -euo pipefail
for tool in zsh fish tmux; do
  command -v "$tool" >/dev/null || missing="${missing:-} $tool"
done
if [ -n "${missing:-}" ]; then
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
