#!/usr/bin/env bash
# `lbctl demo` on this machine, with everything it needs installed first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/lbctl" demo "$@"
