"""One balancer instance's L2 side for tests/balancer/network/test_l2.py, run inside a namespace.

Why a separate process per instance: the failover test must kill an owner with SIGKILL (no
"leaving" heartbeat, no unbinding) and watch the survivor notice from heartbeats alone. The
instance cleans VIPs a previous run left on lo, prepares the interface (arp_ignore/arp_announce),
binds owned VIPs on lo, serves a TCP port that answers with the instance name, and prints one
JSON object per line for every event (started, alive, owned, released, conflict, stopped).
SIGTERM stops it gracefully ("leaving" heartbeat, VIPs unbound).

    ip netns exec NS python -m tests.balancer.network.l2_instance --name a --interface eth0 \
        --listen 10.97.0.11:17946 --peer b=10.97.0.12:17946 --key-file KEY \
        --vip 10.97.0.100 --port 8080
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

from lbctl.balancer.l2 import L2Announcer
from lbctl.balancer.lo_vips import bind_vip, clean_stale_vips, prepare_interface
from lbctl.balancer.membership import Membership


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def main(args: argparse.Namespace, key: bytes) -> None:
    removed = clean_stale_vips()
    prepare_interface(args.interface)
    peers = []
    for spec in args.peer:
        name, _, where = spec.partition("=")
        peers.append((name, *_hostport(where)))
    membership = Membership(args.name, _hostport(args.listen), peers, args.interval,
                            args.dead_after, key=key)
    membership.subscribe(lambda alive: emit("alive", alive=alive))

    def on_ownership(vip: str, owned: bool) -> None:
        bind_vip(vip, owned)
        emit("owned" if owned else "released", vip=vip)

    announcer = L2Announcer(args.interface, membership,
                            on_conflict=lambda vip, mac: emit("conflict", vip=vip, mac=mac),
                            on_ownership=on_ownership, refresh_seconds=args.refresh,
                            conflict_quiet=args.conflict_quiet)
    announcer.set_vips(args.vip)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(f"{args.name}\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, None, args.port)  # every address, both families
    await announcer.start()
    emit("started", mac=announcer.mac, stale_removed=removed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await announcer.stop()
    server.close()
    emit("stopped", status=announcer.status())


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--name", required=True)
    p.add_argument("--interface", required=True)
    p.add_argument("--listen", required=True)
    p.add_argument("--peer", action="append", default=[], help="name=host:port")
    p.add_argument("--key-file", required=True)
    p.add_argument("--vip", action="append", default=[])
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--dead-after", type=float, default=0.8)
    p.add_argument("--refresh", type=float, default=10.0)
    p.add_argument("--conflict-quiet", type=float, default=30.0)
    return p.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = parse()
    asyncio.run(main(options, Path(options.key_file).read_bytes().strip()))
