"""A moto server on LocalStack's port, for machines without Docker (or without LocalStack Pro).

    python -m localstack.moto_4566 [--port 4566] [--host 127.0.0.1]
                                   [--world NAME [--nodes 3] [--nodes-file PATH]]

Serves EC2, ELBv2 and STS (and the rest of moto) until SIGTERM or SIGINT. With `--world` it
seeds the world of `localstack/world.py` (what `init/ready.d/10-lbctl-world.sh` creates in
LocalStack) and writes the `lbctl sandbox --nodes-file` for it. Prints one line once serving:

    moto ready at http://127.0.0.1:4566 (LocalStack's port; world kubernetes: 3 nodes) ...

`--port 0` picks a free port (the line tells which).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

if __package__ in (None, ""):  # run as a file: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from moto.server import ThreadedMotoServer

from localstack import world as world_module

DEFAULT_REGION = "us-east-1"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m localstack.moto_4566",
        description="Serve moto on LocalStack's port, optionally seeded with lbctl's AWS world.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566, help="0 picks a free port")
    parser.add_argument("--world", metavar="CLUSTER",
                        help="seed the world for this cluster name (VPC, subnets, instances)")
    parser.add_argument("--nodes", type=int, default=3, help="instances in the world (3)")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", DEFAULT_REGION))
    parser.add_argument("--nodes-file", type=Path,
                        help="write the world's `lbctl sandbox --nodes-file` here "
                             "(seeds cluster 'kubernetes' unless --world names another)")
    args = parser.parse_args(argv)
    if args.nodes_file and not args.world:
        args.world = "kubernetes"
    if not 0 <= args.port <= 65535:
        parser.error("--port: between 0 and 65535")
    if args.nodes < 0:
        parser.error("--nodes: 0 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    try:
        server.start()
    except OSError as exc:
        print(f"moto_4566: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    host, port = server.get_host_and_port()
    shown = f"[{host}]" if ":" in host else host
    endpoint = f"http://{shown}:{port}"
    detail = "LocalStack's port" if port == 4566 else "not LocalStack's port"
    try:
        if args.world:
            ec2 = boto3.client(
                "ec2", endpoint_url=endpoint, region_name=args.region,
                aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"))
            seeded = world_module.seed(ec2, cluster=args.world, nodes=args.nodes,
                                       region=args.region)
            detail += f"; world {seeded.cluster}: {len(seeded.instances)} nodes"
            detail += f" in {', '.join(seeded.subnets)}, VPC {seeded.vpc_id}"
            if args.nodes_file:
                args.nodes_file.write_text(world_module.nodes_file(seeded))
                detail += f") nodes-file={args.nodes_file}"
            else:
                detail += ")"
        else:
            detail += ")"
        print(f"moto ready at {endpoint} ({detail}", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
