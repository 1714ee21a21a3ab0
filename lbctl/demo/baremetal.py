"""`lbctl demo`: the whole story on one machine, no root, no cluster and no cloud.

An embedded Kubernetes API (the sandbox) with three simulated nodes on 127.0.10.1-3 whose pods
really serve and whose NodePorts really forward; a software balancer daemon (userspace data
plane, active health checks) serving VIPs from 127.0.100.0/24; the lbctl controller with the
`baremetal` provider allocating those VIPs and programming the daemon over its authenticated
API. The story (`story`) then runs the seed's commands as a user types them and sends real
traffic through the VIP, stops a node and shows the traffic carrying on.

Exit status: 0 only when at least two pods answered through the VIP and no request failed after
the stopped node was detected (the balancer ejected it and the endpoints dropped its pods).

`lbctl demo --provider aws` runs `lbctl.demo.aws` instead. The controller runs through
`lbctl.controller.embedded`.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import click

from ..balancer.daemon import DaemonThread, ServeOptions
from ..controller.config import parse_config
from ..controller.embedded import running_controller
from ..sandbox.app import SandboxOptions, SandboxThread
from ..sandbox.nodes import simulated
from .story import Story, wait_for_ctrl_c

POOL = "127.0.100.10-127.0.100.50"


def demo_config(balancer_url: str, token_file: Path) -> str:
    return f"""
clusterName: demo
provider: baremetal
controller: {{nodeSyncDebounceSeconds: 0.2}}
baremetal:
  pools:
  - name: demo
    addresses: ["{POOL}"]
  balancers:
  - {{name: demo-lb, url: "{balancer_url}", tokenFile: "{token_file}"}}
  healthCheck: {{intervalSeconds: 0.5, timeoutSeconds: 0.5, healthyThreshold: 2,
                unhealthyThreshold: 2}}
  statusPollSeconds: 0.5
  drainSeconds: 2
"""


def run_demo(keep: bool = False) -> None:
    """The bare-metal story: real traffic through a VIP of the software balancer."""
    with tempfile.TemporaryDirectory(prefix="lbctl-demo-") as tmp:
        root = Path(tmp)
        kubeconfig = root / "kubeconfig"
        token_file = root / "balancer-token"
        token_file.write_text(secrets.token_urlsafe(32))
        token_file.chmod(0o600)
        sandbox = SandboxThread(SandboxOptions(nodes=simulated(3), kubeconfig=kubeconfig,
                                               traffic=True, traffic_log_level="WARNING"))
        box = sandbox.start()
        balancer = DaemonThread(ServeOptions(api_listen="127.0.0.1:0", token_file=token_file,
                                             state_file=root / "balancer-state.json"))
        try:
            balancer.start()
            click.echo(f"sandbox ready at {box.url}: Kubernetes v1.33, nodes "
                       "sandbox-node-1..3 on 127.0.10.1-3")
            click.echo(f"balancer daemon ready at {balancer.url} (userspace data plane, "
                       "health checks every 0.5 s)")
            config = parse_config(demo_config(balancer.url, token_file))
            with running_controller(kubeconfig, config) as embedded:
                kube = embedded.kube
                click.echo(f"lbctl controller running: provider baremetal, pool {POOL}, "
                           "programming balancer demo-lb")
                story = Story(kube, balancer.url, token_file.read_text())
                story.run()
                if keep:
                    wait_for_ctrl_c(_baremetal_hints(kubeconfig))
                story.cleanup()
                problem = story.verdict()
                if problem:
                    raise click.ClickException(problem)
                click.secho("\ndemo passed: traffic through the VIP reached "
                            f"{len(story.pods_seen)} pods, no request failed after detection",
                            fg="green")
        finally:
            balancer.stop()
            sandbox.stop()


def _baremetal_hints(kubeconfig: Path) -> str:
    return (f"\nStill running (--keep). In another terminal:\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            "  kubectl get services,nodes,pods -o wide\n"
            "  kubectl describe service frontend\n"
            "  kubectl annotate node sandbox-node-1 sandbox.lbctl.io/stopped-   # restart it\n"
            "  curl http://$(kubectl get service frontend "
            "-o jsonpath='{.status.loadBalancer.ingress[0].ip}'):8080/\n"
            "Press Ctrl-C to finish (the Service is then deleted and everything stops).")
