#!/usr/bin/env bash
# A single-machine Slurm cluster (Debian's slurm-wlm + munge) for the slurm provider's tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/start-slurm.sh --install
