"""The cost of lbctl's nftables data plane per change: render + one `nft -j -f -` transaction.

For 1, 100 and 1,000 balancers (`--sizes`), each with 3 targets: a TCP listener on :80 for
every balancer, and also a UDP listener on :53 for every 4th one (so 1,000 balancers are 1,250
frontends); every 3rd has `sessionAffinity: ClientIP`, every 10th `sourceRanges`. Targets are
distinct per balancer (10.201-203.x.y), so Maglev tables are not shared.

Everything is committed in a scratch network namespace (`lbb-nft-scratch`, created here and
deleted on exit; no traffic) through lbctl's own `NftablesDataplane(netns=...)`, i.e. exactly
the daemon's `nft_rules.render` -> `nft -j -f -` path, with `ip netns exec` in front (its cost
is in every figure; the empty transaction row shows the fixed part). Printed per size:
- render: `nft_rules.render(balancers, is_up)` on a cold cache (the first render of this
  size: Maglev tables are computed) and the median of 3 warm renders (cached Maglev tables);
- JSON: the size of the document `nft` reads;
- transaction: `run_document`'s time (the `nft` process, parsing included), median of 3 commits,
  each replacing the table the previous one left (the daemon's steady state; the first commit,
  into an empty namespace, is printed too);
- with 1,000 programmed (the largest size): a target goes down -> re-render and re-apply (the
  daemon re-renders the whole table on every health change), median of 3, each starting from
  the all-up table.

Complete means: every commit of a size succeeded and the table listed after them holds every
chain the rendered document adds (the kernel took the whole document). A size that fell short
prints "INCOMPLETE: ..." in its row and no figures; the down-target line needs the largest size
complete.

    .venv/bin/python bench/nft_transaction.py [--sizes 1,100,1000] [--repeat 3]

Needs root and the `nft` binary.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import orjson

from bench.completeness import Tally
from bench.netns_tools import BenchError, run
from lbctl.balancer import nft_rules
from lbctl.balancer.model import BalancerConfig, parse_balancer
from lbctl.balancer.nft import NftablesDataplane, NftError

NS = "lbb-nft-scratch"
TARGETS = 3


def balancers(count: int) -> list[BalancerConfig]:
    out = []
    for i in range(count):
        hi, lo = divmod(i, 250)
        targets = [f"10.{201 + t}.{hi}.{lo + 1}" for t in range(TARGETS)]  # distinct sets
        doc: dict[str, Any] = {
            "name": f"svc-{i}", "vip": f"10.200.{hi}.{lo + 1}", "dataplane": "nftables",
            "listeners": [{"port": 80, "targets": [f"{a}:30080" for a in targets]}]}
        if i % 4 == 0:
            doc["listeners"].append({"protocol": "UDP", "port": 53,
                                     "targets": [f"{a}:30053" for a in targets]})
        if i % 3 == 0:
            doc["sessionAffinity"] = "ClientIP"
        if i % 10 == 0:
            doc["sourceRanges"] = ["10.0.0.0/8", "192.168.0.0/16"]
        out.append(parse_balancer(doc))
    return out


def all_up(_key: tuple[str, int]) -> bool:
    return True


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


@dataclass
class Result:
    count: int
    frontends: int
    render_cold: float
    render_warm: float
    json_bytes: int
    first_commit: float
    commit: float
    chains: int
    rendered_chains: int
    down_render: float | None = None
    down_commit: float | None = None
    down_bytes: int | None = None


def measure(dp: NftablesDataplane, count: int, repeat: int, down: bool) -> Result:
    bs = balancers(count)
    frontends = sum(len(b.listeners) for b in bs)
    cold, doc = timed(lambda: nft_rules.render(bs, all_up))
    warm = statistics.median(timed(lambda: nft_rules.render(bs, all_up))[0]
                             for _ in range(repeat))
    size = len(orjson.dumps(doc))
    dp.clear()
    first = dp.run_document(doc)
    commits = [dp.run_document(doc) for _ in range(repeat)]
    listed = dp.current()
    if listed is None:
        raise BenchError("the table is missing after the commit")
    chains = sum(1 for item in listed.get("nftables", []) if "chain" in item)
    rendered = sum(1 for item in doc.get("nftables", [])
                   if "chain" in (item.get("add") or {}))
    result = Result(count, frontends, cold, warm, size, first, statistics.median(commits),
                    chains, rendered)
    if chains < rendered:
        return result  # incomplete: no down-target figures on a table that is not all there
    if down:
        victim = (bs[count // 2].listeners[0].targets[0].address,
                  bs[count // 2].listeners[0].targets[0].port)

        def is_up(key: tuple[str, int]) -> bool:
            return key != victim

        renders, applies = [], []
        down_doc: dict[str, Any] = {}
        for _ in range(repeat):
            dp.run_document(doc)  # all up again
            took, down_doc = timed(lambda: nft_rules.render(bs, is_up))
            renders.append(took)
            applies.append(dp.run_document(down_doc))
        result.down_render = statistics.median(renders)
        result.down_commit = statistics.median(applies)
        result.down_bytes = len(orjson.dumps(down_doc))
    return result


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.1f}"


def tally(r: Result) -> Tally:
    """Did the kernel take the whole document: chains listed of chains rendered."""
    return Tally("rendered chains in the listed table", r.rendered_chains, r.chains)


def report(rows: list[Result], empty: float, repeat: int,
           failed: dict[int, str] | None = None) -> None:
    """The table; `failed`: the sizes whose commits nft refused, with its error."""
    print()
    print(f"## nft transaction cost (median of {repeat}; times in ms)")
    print()
    print("| balancers | frontends | render cold | render warm | JSON KiB | first commit "
          "| transaction | chains listed |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| 0 (empty table) | 0 | - | - | - | - | {ms(empty)} | - |")
    for r in rows:
        if not tally(r).complete:
            print(f"| {r.count:,} | {r.frontends:,} | {tally(r)} ||||||")
            continue
        print(f"| {r.count:,} | {r.frontends:,} | {ms(r.render_cold)} | {ms(r.render_warm)} "
              f"| {r.json_bytes / 1024:,.0f} | {ms(r.first_commit)} | {ms(r.commit)} "
              f"| {r.chains:,} |")
    for count, why in (failed or {}).items():
        print(f"| {count:,} | - | INCOMPLETE: nft refused a commit: {why[:200]} ||||||")
    big = next((r for r in reversed(rows) if r.down_commit is not None), None)
    if failed or (rows and not tally(rows[-1]).complete):
        big = None
        print()
        print("One target down: NOT MEASURED (a size did not complete)")
    if big is not None:
        print()
        print(f"One target down with {big.count:,} balancers programmed (re-render + re-apply of "
              f"the whole table, as the daemon does): render {ms(big.down_render)} ms, "
              f"transaction {ms(big.down_commit)} ms, total "
              f"{ms((big.down_render or 0) + (big.down_commit or 0))} ms "
              f"(JSON {(big.down_bytes or 0) / 1024:,.0f} KiB).")
    print()
    print("transaction = the `ip netns exec NS nft -j -f -` process, JSON parsing and kernel "
          "commit included, replacing the table the previous commit left; first commit = into "
          "an empty namespace. render cold = first render of that size (Maglev tables "
          "computed), warm = cached tables.")


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--sizes", default="1,100,1000", help="balancer counts, comma-separated")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        p.error("--sizes takes integers")
    if not sizes or any(not 1 <= s <= 20000 for s in sizes) or not 1 <= args.repeat <= 20:
        p.error("--sizes must be 1..20000 each, --repeat 1..20")
    if os.geteuid() != 0:
        print("needs root (a network namespace, nft)", file=sys.stderr)
        return 2
    if shutil.which("nft") is None:
        print("the `nft` binary is not installed", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    print(f"lbctl nft transaction benchmark, {time.strftime('%Y-%m-%d %H:%M:%S')}, "
          f"{os.cpu_count()} CPU(s), {run(['nft', '--version']).stdout.strip()}", flush=True)
    ok = False
    try:
        if NS in run(["ip", "netns", "list"]).stdout.split():
            run(["ip", "netns", "del", NS])
        run(["ip", "netns", "add", NS])
        dp = NftablesDataplane(netns=NS)
        available, why = NftablesDataplane.available(netns=NS)
        if not available:
            raise BenchError(f"nftables not available: {why}")
        dp.clear()
        empty = statistics.median(dp.run_document(nft_rules.render([], all_up))
                                  for _ in range(args.repeat))
        rows = []
        failed: dict[int, str] = {}
        for i, count in enumerate(sorted(sizes)):
            print(f"{count} balancers ...", flush=True)
            try:
                rows.append(measure(dp, count, args.repeat, down=i == len(sizes) - 1))
            except NftError as exc:
                failed[count] = str(exc)
        dp.clear()
        report(rows, empty, args.repeat, failed)
        ok = not failed and all(tally(r).complete for r in rows)
    except (BenchError, NftError) as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with contextlib.suppress(BenchError, subprocess.TimeoutExpired):
            run(["ip", "netns", "del", NS], check=False)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
