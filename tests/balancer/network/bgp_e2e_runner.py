"""The Kubernetes side of test_bgp_controller_e2e.py, run INSIDE one BGP lab host namespace.

Why a process of its own in the host's namespace: the sandbox's simulated nodes and pods live
on loopback addresses (nodes 127.0.10.K, pods 127.0.20.x) of the namespace they run in, and the
balancer daemon must reach them there while its VIPs arrive on the host's `wan` link from the
router. So everything runs here, side by side, as `tests/controller/test_balancer_e2e.py`'s
`running_stack` does in the root namespace: the sandbox with traffic (3 simulated nodes), a
balancer daemon (`DaemonThread`, API on 127.0.0.1 with a token) and the controller
(`running_controller`) with a `baremetal` config whose pool holds routable addresses (never
127/8: a router does not forward loopback), `balancers: [the daemon]` and a `bgp:` section whose
one peer is the lab's router, its advertisement naming that pool (`cooldownSeconds: 0`: a
released address may be handed out again at once, which the test checks).

    ip netns exec <host> python -m tests.balancer.network.bgp_e2e_runner \
        --tmp DIR --pool 10.99.50.0/28 --source 10.99.11.2 --peer 10.99.11.1 \
        --my-asn 65001 --peer-asn 65000 --hold 3

Protocol: one JSON object per line. On stdout (a private copy of fd 1: fd 1 itself is pointed
at stderr, so nothing the sandbox, its traffic process or a library prints can corrupt the
protocol) the runner first says `{"ready": true, "kubeconfig": ..., "daemon": URL}`, then
answers each command read from stdin with one line (`{"error": ...}` when a command failed):

* `{"op": "create", "name": N, "port": P, "replicas": R}`: a Deployment of R pods (containerPort
  8080) and a LoadBalancer Service N (port P -> 8080) through the official client; answers when
  the Service has an ingress IP, its LoadBalancerServing condition is True and the daemon
  reports every target healthy: `{"vip", "ipMode", "conditions": {type: {status, reason,
  message}}, "healthy"}`.
* `{"op": "service", "name": N}`: the same view of the Service now (`{"gone": true}` when
  it does not exist).
* `{"op": "bgp"}`: the daemon's `GET /v1/bgp`: `source` (programmed: pushed by the provider),
  `config` (the section it holds) and `status` (speaker, peers, VIPs, boundOnLo).
* `{"op": "delete", "name": N}`: deletes the Service and answers when the API no longer has
  it (the controller released it: finalizer removed) and the daemon no longer has its
  balancer: `{"balancers": [names left on the daemon]}`.
* `{"op": "quit"}` (or stdin closed): stop the controller, daemon and sandbox; exit 0.

The runner exits by itself after `--limit` seconds, whatever happens (the test's lab teardown
also kills every process of the namespace).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from lbctl.balancer.daemon import DaemonThread, ServeOptions
from lbctl.controller.config import parse_config
from lbctl.controller.embedded import running_controller
from lbctl.sandbox.app import SandboxOptions, SandboxThread
from lbctl.sandbox.nodes import simulated
from tests.conftest import client_for

log = logging.getLogger("bgp_e2e_runner")
POOL = "bgp-pool"
NODES = 3
BALANCER = "host-lb"


def controller_config(args: argparse.Namespace, url: str, token_file: Path) -> str:
    peer = (f"{{peerAddress: {args.peer}, peerASN: {args.peer_asn}, holdTime: {args.hold}s, "
            f"sourceAddress: {args.source}}}")
    return f"""
clusterName: bgp-e2e
controller: {{nodeSyncDebounceSeconds: 0.2}}
baremetal:
  pools: [{{name: {POOL}, addresses: ["{args.pool}"]}}]
  balancers: [{{name: {BALANCER}, url: "{url}", tokenFile: "{token_file}"}}]
  healthCheck: {{intervalSeconds: 0.2, timeoutSeconds: 0.5, healthyThreshold: 1,
                unhealthyThreshold: 2}}
  statusPollSeconds: 0.2
  drainSeconds: 0
  cooldownSeconds: 0
  bgp:
    myASN: {args.my_asn}
    holdDownSeconds: 0.5
    peers: [{peer}]
    advertisements: [{{ipAddressPools: [{POOL}]}}]
"""


class Runner:
    def __init__(self, args: argparse.Namespace, out: IO[str]) -> None:
        self.args = args
        self.out = out
        self.tmp = Path(args.tmp)
        self.token = secrets.token_urlsafe(24)
        self.token_file = self.tmp / "runner-token"
        self.token_file.write_text(self.token)
        self.kubeconfig = self.tmp / "runner-kubeconfig"

    # -- the daemon's API ----------------------------------------------------------------
    def daemon_get(self, path: str) -> Any:
        req = urllib.request.Request(f"{self.balancer.url}{path}",
                                     headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def daemon_balancers(self) -> dict[str, Any]:
        return {b["balancer"]["owner"]["name"]: b
                for b in self.daemon_get("/v1/balancers")["balancers"]}

    # -- Kubernetes -------------------------------------------------------------------------
    def view(self, name: str) -> dict[str, Any]:
        try:
            svc = self.core.read_namespaced_service(name, "default").to_dict()
        except ApiException as exc:
            if exc.status == 404:
                return {"gone": True}
            raise
        ingress = ((svc["status"] or {}).get("load_balancer") or {}).get("ingress") or []
        conditions = {c["type"]: {"status": c["status"], "reason": c["reason"],
                                  "message": c["message"]}
                      for c in (svc["status"] or {}).get("conditions") or []}
        lb = self.daemon_balancers().get(name)
        return {"vip": ingress[0]["ip"] if ingress else None,
                "ipMode": ingress[0].get("ip_mode") if ingress else None,
                "conditions": conditions,
                "healthy": lb["status"]["healthyTargets"] if lb else None}

    def create(self, name: str, port: int, replicas: int, timeout: float = 30.0
               ) -> dict[str, Any]:
        self.apps.create_namespaced_deployment("default", {
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "containers": [{"name": "c", "image": "nginx",
                                         "ports": [{"containerPort": 8080}]}]}}}})
        self.core.create_namespaced_service("default", {
            "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "selector": {"app": name},
                     "ports": [{"port": port, "targetPort": 8080}]}})
        deadline = time.monotonic() + timeout
        while True:
            view = self.view(name)
            serving = view["conditions"].get("LoadBalancerServing", {}).get("status")
            if view["vip"] and serving == "True" and view["healthy"] == NODES:
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not served after {timeout:g} s: {view}")
            time.sleep(0.1)

    def delete(self, name: str, timeout: float = 20.0) -> dict[str, Any]:
        self.core.delete_namespaced_service(name, "default")
        deadline = time.monotonic() + timeout
        while True:
            left = self.daemon_balancers()
            if self.view(name).get("gone") and name not in left:
                return {"balancers": sorted(left)}
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} still there after {timeout:g} s: "
                                   f"{self.view(name)}, daemon {sorted(left)}")
            time.sleep(0.1)

    # -- the protocol ----------------------------------------------------------------------
    def say(self, doc: dict[str, Any]) -> None:
        self.out.write(json.dumps(doc, default=str) + "\n")
        self.out.flush()

    def handle(self, command: dict[str, Any]) -> dict[str, Any] | None:
        op = command.get("op")
        if op == "create":
            return self.create(str(command["name"]), int(command.get("port", 80)),
                               int(command.get("replicas", 3)))
        if op == "service":
            return self.view(str(command["name"]))
        if op == "bgp":
            doc: dict[str, Any] = self.daemon_get("/v1/bgp")
            return doc
        if op == "delete":
            return self.delete(str(command["name"]))
        if op == "quit":
            return None
        return {"error": f"unknown op {op!r}"}

    def serve(self) -> None:
        box_thread = SandboxThread(SandboxOptions(nodes=simulated(NODES),
                                                  kubeconfig=self.kubeconfig, traffic=True,
                                                  bookmark_interval=0.5))
        box = box_thread.start()
        self.balancer = DaemonThread(ServeOptions(api_listen="127.0.0.1:0",
                                                  token_file=self.token_file,
                                                  state_file=self.tmp / "runner-state.json"))
        self.balancer.start()
        api = client_for(box)
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        config = parse_config(controller_config(self.args, self.balancer.url, self.token_file))
        try:
            with running_controller(self.kubeconfig, config, qps=500, burst=1000):
                self.say({"ready": True, "kubeconfig": str(self.kubeconfig),
                          "daemon": self.balancer.url})
                for line in sys.stdin:
                    if not line.strip():
                        continue
                    try:
                        answer = self.handle(json.loads(line))
                    except Exception as exc:  # reported to the test, never fatal
                        log.exception("command %s failed", line.strip())
                        answer = {"error": f"{type(exc).__name__}: {exc}"}
                    if answer is None:
                        self.say({"bye": True})
                        break
                    self.say(answer)
        finally:
            api.close()
            self.balancer.stop()
            box_thread.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bgp_e2e_runner")
    parser.add_argument("--tmp", required=True)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--source", required=True, help="this host's address (BGP source)")
    parser.add_argument("--peer", required=True, help="the router's address")
    parser.add_argument("--my-asn", type=int, required=True)
    parser.add_argument("--peer-asn", type=int, required=True)
    parser.add_argument("--hold", type=int, default=3)
    parser.add_argument("--limit", type=float, default=120.0,
                        help="exit after this many seconds whatever happens")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # the polls: noise
    # The protocol gets a private copy of stdout; fd 1 goes to stderr for everyone else.
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    timer = threading.Timer(args.limit, lambda: os._exit(3))
    timer.daemon = True
    timer.start()
    Runner(args, out).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
