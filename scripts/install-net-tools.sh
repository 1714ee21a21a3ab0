#!/usr/bin/env bash
# Install the Debian packages the network tests (and, with --bench, the data-plane benchmark)
# need: nftables + iproute2 (+ util-linux's setpriv) and BIRD2 (the BGP lab's upstream router,
# bird/birdc in /usr/sbin) for tests/balancer/network; haproxy, wrk, iperf3 and
# nginx-light for bench/balancer.py. Idempotent and quiet when everything is there. Without root
# or apt-get it says what is missing and exits 0: the network tests then fail under CI=true
# (and skip otherwise) with a message naming the missing tool.
set -euo pipefail
want=(nft:nftables ip:iproute2 setpriv:util-linux bird:bird2 birdc:bird2)
if [ "${1:-}" = "--bench" ]; then
    want+=(haproxy:haproxy wrk:wrk iperf3:iperf3 nginx:nginx-light)
fi
missing=()
for pair in "${want[@]}"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)  # bird and birdc: one package
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install-net-tools: missing ${missing[*]} (need root and apt-get to install)" >&2
    exit 0
fi
echo "install-net-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null 2>&1
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
