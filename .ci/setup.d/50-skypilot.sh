#!/usr/bin/env bash
# SkyPilot 0.14.1 in a virtualenv of its own, for bench.vs_skypilot_optimizer's smoke test
# (tests/bench): SkyPilot's optimizer runs there, offline, on catalog files rebuilt from the
# reference data; it never shares skyd's environment. Idempotent.
set -euo pipefail
VENV=/opt/skypilot-venv
if ! "$VENV/bin/python" -c "import boto3, sky, sys; sys.exit(sky.__version__ != '0.14.1')" 2>/dev/null; then
  PY=$(command -v python3.11 || command -v python3)
  "$PY" -m venv "$VENV"
  # [aws]: boto3, so a task with an AWS image id asks EC2 and must give up at once (offline)
  "$VENV/bin/pip" install -q --disable-pip-version-check "skypilot[aws]==0.14.1"
fi
