"""Local stand-ins for the clouds' APIs, beside the sandbox: for tests, demos, benchmarks and users.

One shape for every cloud (`lbctl emulator aws|gcp|azure --listen HOST:PORT --nodes N
--nodes-file PATH [--config-out PATH]`): serve the API subset lbctl uses on loopback, seed a
world through the cloud's own API (network, subnets, N instances), write the sandbox's nodes
file whose providerIDs name those instances, optionally a config file for `lbctl run`, print
one line with `ready` and the URL, run until SIGTERM.

- `aws`: moto (`ThreadedMotoServer`) seeded with `aws.world` through boto3.

The emulators import nothing of the controller, the sandbox or the providers (an import-linter
contract says so): they stand for the cloud, not for lbctl. They are only installed with the
`lbctl[sandbox]` extra.
"""
