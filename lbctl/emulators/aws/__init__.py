"""AWS without AWS: a moto server (`server`) seeded with lbctl's AWS world (`world`).

`world` is what `localstack/init/ready.d/10-lbctl-world.sh` builds in LocalStack Pro, so the
same tests run against either (`AWS_ENDPOINT_URL`).
"""
