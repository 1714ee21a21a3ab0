"""`lbctl demo --provider aws`: the controller and the `aws` provider against an AWS emulator.

`lbctl emulator aws` in-process (moto on a free port of 127.0.0.1; or the endpoint in
AWS_ENDPOINT_URL: LocalStack Pro, or an `lbctl emulator aws` started by hand), seeded with its
world (a VPC, tagged subnets in two zones, a node security group, three instances); the
sandbox's nodes are those instances (not simulated: no pods run on them and nothing answers on
their addresses); the controller runs with `provider: aws`. The story creates and exposes a
Deployment, shows the Service's hostname and then what was built in AWS as the AWS CLI would
list it (the NLB, its tags, target groups, registered targets, listeners, the `lbctl:` security
group rules), deletes the Service and counts what is left. moto carries no traffic, so none is
sent.

The emulator (boto3, moto) comes with the `lbctl[sandbox]` extra and is imported only when this
demo runs; lbctl's core never imports a cloud SDK.

Exit status: 0 only when the Service got the NLB's hostname and nothing tagged for the demo's
cluster is left in AWS after the delete.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from providers.aws.names import TAG_CLUSTER

from ..kube import Kube
from .aws_view import AwsView
from .cloud import (
    cluster,
    condition,
    delete_frontend,
    expose_frontend,
    frontend_service,
    play,
)
from .story import NS, print_services, print_table, say, wait_for

if TYPE_CHECKING:
    from ..emulators.aws.server import AwsEmulator

NODES = 3
DEFAULT_REGION = "us-east-1"


def aws_config(cluster: str, region: str, endpoint: str) -> str:
    """`lbctl emulator aws --config-out`'s config, with node changes synced at once."""
    from ..emulators.aws.server import config_text  # noqa: PLC0415 (the sandbox extra)

    return config_text(cluster, region, endpoint) + "controller: {nodeSyncDebounceSeconds: 0.2}\n"


@contextlib.contextmanager
def aws_endpoint(region: str) -> Iterator[tuple[AwsEmulator, bool]]:
    """(emulator, whether the demo started it): AWS_ENDPOINT_URL when set, else `lbctl
    emulator aws` on a free port of 127.0.0.1, stopped on exit."""
    try:
        from ..emulators.aws.server import AwsEmulator  # noqa: PLC0415
    except ImportError as exc:
        raise click.ClickException(
            "lbctl demo --provider aws needs boto3 and moto (install lbctl[sandbox]), "
            f"or AWS_ENDPOINT_URL pointing at LocalStack Pro: {exc}") from exc
    given = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    if given:
        yield AwsEmulator(region=region, endpoint=given.rstrip("/")), False
        return
    with AwsEmulator(region=region) as emulator:
        yield emulator, True


def run_aws_demo(keep: bool = False) -> None:
    region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
              or DEFAULT_REGION)
    with tempfile.TemporaryDirectory(prefix="lbctl-demo-aws-") as tmp, \
            aws_endpoint(region) as (emulator, own):
        root = Path(tmp)
        endpoint = emulator.endpoint
        # A shared endpoint keeps earlier worlds: a cluster name of our own keeps them apart.
        cluster_name = "demo" if own else f"demo-{secrets.token_hex(3)}"
        try:
            world = emulator.seed(cluster=cluster_name, nodes=NODES)
        except Exception as exc:  # botocore's: no endpoint there, refused, ...
            hint = (" (LocalStack and moto take any: export AWS_ACCESS_KEY_ID=test "
                    "AWS_SECRET_ACCESS_KEY=test)" if "credentials" in str(exc) else "")
            raise click.ClickException(f"cannot seed the AWS world at {endpoint}: "
                                       f"{exc}{hint}") from exc
        ec2, elbv2 = emulator.clients()
        aws = AwsView(ec2, elbv2, cluster_name, world.vpc_id)
        what = "a moto server of its own" if own else "AWS_ENDPOINT_URL"
        click.echo(f"AWS endpoint {endpoint} ({what}, {region}; no traffic is sent: moto and "
                   "LocalStack forward no packets for an NLB)")
        click.echo(f"world {cluster_name}: VPC {world.vpc_id}, subnets "
                   f"{', '.join(f'{s} ({az})' for az, s in world.subnets.items())}, node "
                   f"security group {world.security_group_id}, instances "
                   f"{', '.join(i.instance_id for i in world.instances)}")
        with cluster(root, lambda path: emulator.write_files(world, path, None),
                     (i.name for i in world.instances),
                     "the instances, providerID aws:///<zone>/<instance-id>",
                     aws_config(cluster_name, region, endpoint)) as (embedded, kubeconfig):
            click.echo(f"lbctl controller running: provider aws, cluster {cluster_name}, "
                       f"endpoint {endpoint}")
            story = AwsStory(embedded.kube, aws,
                             {i.instance_id: i.name for i in world.instances})
            play(story, keep, _hints(kubeconfig, endpoint, region, own), story.cleanup)
            click.secho(f"\ndemo passed: the Service got {story.hostname}, and nothing "
                        "tagged for the cluster is left in AWS", fg="green")


def _hints(kubeconfig: Path, endpoint: str, region: str, own: bool) -> str:
    credentials = " AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing" if own else ""
    return (f"\nStill running (--keep). In another terminal:\n"
            f"  export KUBECONFIG={kubeconfig}\n"
            "  kubectl get services,nodes -o wide\n"
            "  kubectl describe service frontend\n"
            f"  export AWS_ENDPOINT_URL={endpoint} AWS_DEFAULT_REGION={region}{credentials}\n"
            "  aws elbv2 describe-load-balancers\n"
            "Press Ctrl-C to finish (the Service is then deleted and everything stops).")


class AwsStory:
    """The commands a user would type, and what kubectl and the AWS CLI would show."""

    def __init__(self, kube: Kube, aws: AwsView, node_names: dict[str, str]) -> None:
        self.kube = kube
        self.aws = aws
        self.node_names = node_names
        self.hostname = ""
        self.left: dict[str, int] = {}

    def run(self) -> None:
        expose_frontend(self.kube, 80, frontend_service(80))
        self._pods()
        svc = wait_for(self._with_hostname, "the Service's EXTERNAL-IP hostname", 60)
        self.hostname = svc["status"]["loadBalancer"]["ingress"][0]["hostname"]
        provisioning = condition(svc, "LoadBalancerProvisioning")
        say("kubectl get services")
        print_services(self.kube)
        click.echo("\nEXTERNAL-IP is the NLB's DNS name.", nl=False)
        if provisioning and provisioning["status"] == "True":
            click.echo(" The controller wrote it while AWS was still provisioning the NLB "
                       f"(LoadBalancerProvisioning=True: {provisioning.get('message', '')}) "
                       "and polls until the NLB is active.", nl=False)
        click.echo("")
        wait_for(self._ensured, "the Service's LoadBalancerProvisioning=False (Ensured)", 60)
        self.aws.show(self.node_names)

    def _pods(self) -> None:
        """`kubectl get pods`: Pending, since no kubelet runs on the instances."""
        def pods() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = self.kube.request(
                "GET", f"{NS}/pods", query={"labelSelector": "app=frontend"})["items"]
            return items if len(items) == 3 else []

        say("kubectl get pods -l app=frontend")
        rows = [("NAME", "READY", "STATUS")]
        reason = ""
        for pod in wait_for(pods, "the Deployment's pods", 20):
            status = pod.get("status") or {}
            rows.append((pod["metadata"]["name"], "0/1", status.get("phase", "Pending")))
            for cond in status.get("conditions") or []:
                if cond["type"] == "PodScheduled" and cond.get("message"):
                    reason = cond["message"]
        print_table(rows)
        click.echo(f"\nPending{f' ({reason})' if reason else ''}: the nodes are the world's EC2 "
                   "instances, which the sandbox does not simulate, and moto runs nothing on "
                   "them. The NLB targets the nodes' nodePort all the same.")

    def _with_hostname(self) -> dict[str, Any] | None:
        svc: dict[str, Any] = self.kube.request("GET", f"{NS}/services/frontend")
        ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        return svc if ingress and ingress[0].get("hostname") else None

    def _ensured(self) -> bool:
        cond = condition(self.kube.request("GET", f"{NS}/services/frontend"),
                          "LoadBalancerProvisioning")
        return cond is not None and cond["status"] == "False"

    def cleanup(self) -> None:
        delete_frontend(self.kube)
        click.echo('service "frontend" deleted (finalizer released after the provider deleted '
                   "the listeners, the NLB, the target groups, the rules and the security groups)")
        self.left = self.aws.leftovers()
        say(f"# what is left in AWS for the cluster (tagged {TAG_CLUSTER}={self.aws.cluster}, "
            "or an lbctl: rule)")
        click.echo("  " + ", ".join(f"{n} {kind}" for kind, n in self.left.items()))

    def verdict(self) -> str | None:
        if not self.hostname:
            return "the Service never got a hostname"
        left = {kind: n for kind, n in self.left.items() if n}
        if left:
            return "left in AWS after the delete: " + ", ".join(
                f"{n} {kind}" for kind, n in left.items())
        return None
