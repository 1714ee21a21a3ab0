# The two commands the README opens with, plus helpers. Each installs what it needs.
.PHONY: demo test lint bench

demo:
	scripts/demo.sh

test:
	scripts/test.sh

lint:
	scripts/bootstrap.sh
	.venv/bin/ruff check lbctl providers tests bench deploy
	.venv/bin/mypy
	.venv/bin/lint-imports

bench:
	scripts/bootstrap.sh
	scripts/install-net-tools.sh --bench
	.venv/bin/python bench/sandbox_api.py
	.venv/bin/python bench/controller.py
	.venv/bin/python bench/startup.py
	.venv/bin/python bench/balancer.py
	.venv/bin/python bench/balancer_scale.py
	.venv/bin/python bench/balancer_split.py
	.venv/bin/python bench/l2_failover.py
	.venv/bin/python bench/bgp_failover.py
	.venv/bin/python bench/nft_transaction.py
	.venv/bin/python bench/aws.py
	.venv/bin/python bench/gcp.py
	.venv/bin/python bench/azure.py
	.venv/bin/python bench/soak.py --minutes 2
