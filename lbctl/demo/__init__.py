"""`lbctl demo`: the story on one machine, one module per provider's story.

- `story`: what every story shares: the steps as a user types them (kubectl-like tables printed
  with the sandbox's own printers), waiting, and `--keep`.
- `baremetal`: sandbox + simulated nodes and pods + controller + balancer daemon, real traffic
  through the VIP, a node stopped under load.
- `aws`: sandbox + controller with the `aws` provider against `lbctl emulator aws` (moto) or
  AWS_ENDPOINT_URL; `aws_view` shows what was built as the AWS CLI would.
- `gcp`: sandbox + controller with the `gcp` provider against the GCE emulator in-process;
  `gcp_story` is the story's steps, `gcp_view` shows what was built as gcloud would.
- `azure`: sandbox + controller with the `azure` provider against the ARM emulator in-process;
  `azure_story` is the story's steps (20 Services at once: the shared LB's batched writes),
  `azure_view` shows what was built as the az CLI would.
"""
