"""`lbctl demo`: the whole story on this machine (see `lbctl.demo`), imported when it runs."""

from __future__ import annotations

from collections.abc import Callable

import click

from . import options


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--provider", type=click.Choice(["baremetal", "aws", "gcp", "azure"]),
                  default="baremetal",
                  show_default=True,
                  help="baremetal: a balancer daemon and real traffic; aws: an NLB built "
                       "against `lbctl emulator aws` (or AWS_ENDPOINT_URL), shown as the AWS "
                       "CLI would, no traffic; gcp: a passthrough NLB on a backend service "
                       "built against `lbctl emulator gcp`, shown as gcloud would, no "
                       "traffic; azure: frontends in the cluster's shared Standard LB, written "
                       "in batched PUTs against `lbctl emulator azure`, shown as the az CLI "
                       "would, no traffic.")
    @click.option("--keep", is_flag=True,
                  help="Leave everything running at the end and print how to use it.")
    def demo(provider: str, keep: bool) -> None:
        """Run the story on this machine: sandbox, controller, balancer (real traffic; or an NLB
        against moto with --provider aws, the GCE emulator with --provider gcp, the ARM emulator
        with --provider azure)."""
        story = options.import_or_explain("demo", lambda: _story(provider))
        story(keep=keep)


def _story(provider: str) -> Callable[..., None]:
    """The provider's story, imported only now (the sandbox, and for aws moto and boto3; for
    gcp the GCE emulator, and google-cloud-compute when the provider starts; for azure the ARM
    emulator, and azure-mgmt-network when the provider starts)."""
    if provider == "azure":
        from ..demo.azure import run_azure_demo  # noqa: PLC0415

        return run_azure_demo
    if provider == "gcp":
        from ..demo.gcp import run_gcp_demo  # noqa: PLC0415

        return run_gcp_demo
    if provider == "aws":
        from ..demo.aws import run_aws_demo  # noqa: PLC0415

        return run_aws_demo
    from ..demo.baremetal import run_demo  # noqa: PLC0415

    return run_demo
