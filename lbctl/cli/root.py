"""`lbctl`: the command group, and every command group registered on it.

Commands print plain lines meant for people and exit non-zero with a message naming the bad
flag or file on bad input; long-running ones stop cleanly on SIGTERM and SIGINT. Registering
imports only the command modules (click alone); each command imports what it runs.
"""

from __future__ import annotations

import click

from . import balancer, controller, demo, emulator, sandbox, status


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """lbctl: LoadBalancer Services made real on AWS, GCP, Azure and bare metal."""


for group in (sandbox, emulator, controller, status, balancer, demo):
    group.register(main)

if __name__ == "__main__":
    main()
