#!/usr/bin/env bash
# Microsoft's Azurite (Azure Blob emulator, npm) for the bucket tests, and rclone + fuse3, the
# tools the remote runner mounts or copies buckets with on VMs (the fake VMs are this host).
# Idempotent.
set -euo pipefail
if ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
command -v azurite-blob >/dev/null || npm install -g --no-audit --no-fund azurite
command -v rclone >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone
# fusermount3 for the real `rclone mount` test (tests/storage/test_remote_buckets.py)
command -v fusermount3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3
