"""Write deploy/config.schema.json, the JSON schema of lbctl's config file, from the model.

The schema is generated from `lbctl.controller.config.Config` (the one parser the controller and
`lbctl config validate` use), so it cannot drift as long as this is rerun; tests/deploy checks
that the committed file equals what this prints (`--check`).

    .venv/bin/python deploy/gen_schema.py            # rewrite deploy/config.schema.json
    .venv/bin/python deploy/gen_schema.py --check    # exit 1 when the file is stale

The schema covers the core keys precisely (types, bounds, unknown keys refused). Provider
sections (`baremetal`, `aws`, ...) are objects here: each provider validates its own section,
which `lbctl config validate FILE` reports key by key.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUTPUT = HERE / "config.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _untitle(node: Any) -> Any:
    """Drop pydantic's generated per-field titles ("Clustername"): noise in editors."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: {k: _untitle(v) for k, v in schema.items() if k != "title"}
                            if isinstance(schema, dict) else schema
                            for name, schema in value.items()}
            else:
                out[key] = _untitle(value)
        return out
    if isinstance(node, list):
        return [_untitle(item) for item in node]
    return node


def schema() -> dict[str, Any]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from lbctl.controller.config import Config  # noqa: PLC0415  (after the path is set)

    generated = _untitle(Config.model_json_schema(by_alias=True, mode="validation"))
    return {"$schema": DIALECT, **generated, "title": "lbctl config.yaml",
            "description": "The lbctl controller's config file (the ConfigMap's config.yaml). "
                           "Generated from lbctl.controller.config.Config by deploy/gen_schema.py; "
                           "provider sections are checked by `lbctl config validate`."}


def render() -> str:
    return json.dumps(schema(), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write: exit 1 when the file differs from the model")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        try:
            current = args.output.read_text()
        except OSError as exc:
            print(f"{args.output}: {exc.strerror}", file=sys.stderr)
            return 1
        if current != text:
            print(f"{args.output} is stale: run python deploy/gen_schema.py", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
