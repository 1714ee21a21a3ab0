"""`lbctl demo`: the whole story on this machine (see `lbctl.demo`), imported when it runs."""

from __future__ import annotations

from collections.abc import Callable

import click

from . import options


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--provider", type=click.Choice(["baremetal", "aws", "gcp"]), default="baremetal",
                  show_default=True,
                  help="baremetal: a balancer daemon and real traffic; aws: an NLB built "
                       "against `lbctl emulator aws` (or AWS_ENDPOINT_URL), shown as the AWS "
                       "CLI would, no traffic; gcp: a passthrough NLB on a backend service "
                       "built against `lbctl emulator gcp`, shown as gcloud would, no "
                       "traffic.")
    @click.option("--keep", is_flag=True,
                  help="Leave everything running at the end and print how to use it.")
    def demo(provider: str, keep: bool) -> None:
        """Run the story on this machine: sandbox, controller, balancer (real traffic; or an NLB
        against moto with --provider aws, or against the GCE emulator with --provider gcp)."""
        story = options.import_or_explain("demo", lambda: _story(provider))
        story(keep=keep)


def _story(provider: str) -> Callable[..., None]:
    """The provider's story, imported only now (the sandbox, and for aws moto and boto3; for
    gcp the GCE emulator, and google-cloud-compute when the provider starts)."""
    if provider == "gcp":
        from ..demo.gcp import run_gcp_demo  # noqa: PLC0415

        return run_gcp_demo
    if provider == "aws":
        from ..demo.aws import run_aws_demo  # noqa: PLC0415

        return run_aws_demo
    from ..demo.baremetal import run_demo  # noqa: PLC0415

    return run_demo
