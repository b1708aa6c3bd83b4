#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to one that can build, demo and test the extension.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
