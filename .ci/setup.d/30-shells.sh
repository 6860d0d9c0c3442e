#!/usr/bin/env bash
# zsh and fish, to check that `skyctl completion zsh|fish` load and complete in the real shells.
set -euo pipefail
if ! command -v zsh >/dev/null || ! command -v fish >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends zsh fish
fi
