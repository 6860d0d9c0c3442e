#!/usr/bin/env bash
# bubblewrap: local jobs see their absolute file-mount paths (/data) at those paths in a
# private view of this host (skyd/runner/path_binds.py). Idempotent.
set -euo pipefail
command -v bwrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap
