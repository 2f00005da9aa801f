#!/usr/bin/env bash
# Sets everything up, then runs the broker with its embedded defaults (./firth-data, loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/firth serve "$@"
