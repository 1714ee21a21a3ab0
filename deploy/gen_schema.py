"""Write the JSON schemas of lbctl's config file and of the Helm chart's values.

- deploy/config.schema.json: the config file (the ConfigMap's config.yaml), generated from
  `lbctl.controller.config.Config` (the one parser the controller and `lbctl config validate`
  use), plus the parser's credential rule: a credential-like key (`secretAccessKey`, `apiToken`,
  `password`, ...; a `...File` key naming a mounted Secret is fine) anywhere in a provider's or
  a plugin's section is refused, as `parse_config` refuses it.
- deploy/helm/lbctl/values.schema.json: the chart's values. Helm validates every install,
  upgrade, template and lint against it, so `--set`/`-f` typos in the keys the chart owns are
  refused (unknown keys, wrong types), and `config` is checked by the config schema above: a
  credential set into `config` fails the render instead of landing in the ConfigMap.

Both are generated, so they cannot drift as long as this is rerun; tests/deploy checks that the
committed files equal what this writes (`--check`).

    .venv/bin/python deploy/gen_schema.py            # rewrite both files
    .venv/bin/python deploy/gen_schema.py --check    # exit 1 when either is stale

The config schema covers the core keys precisely (types, bounds, unknown keys refused).
Provider sections (`baremetal`, `aws`, ...) are objects here, free of credentials: each
provider validates its own section, which `lbctl config validate FILE` reports key by key.
One provider key is typed too: `baremetal.bgp`, generated from `lbctl.bgp_config.BgpConfig`
(the one model the provider, the daemon's static file and its `PUT /v1/bgp` parse it with),
plus what that model's validators check beyond its types and a schema can say (`BGP_RULES`:
durations, an absolute `passwordFile`, at least one peer). What a schema cannot say (a unique
peer, `routerID` or an IPv4 `sourceAddress`, pool and instance names) is left to the parser;
tests/deploy checks that the schema never refuses a section the parser takes.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUTPUT = HERE / "config.schema.json"
VALUES_OUTPUT = HERE / "helm" / "lbctl" / "values.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
Schema = dict[str, Any]

# The sections parse_config searches for credentials (lbctl/controller/config.py).
CREDENTIAL_SECTIONS = ("baremetal", "aws", "gcp", "azure", "plugins")
# Anything but an ASCII letter or digit: is_credential_key folds these away before matching.
_GAP = "[^A-Za-z0-9]*"


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


def _folded(word: str) -> str:
    """A regex matching `word` as lbctl.parsing.is_credential_key sees keys: any case, with
    anything but letters and digits between its letters (`secret_access_key`, `Secret-Key`)."""
    return _GAP.join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def _alnum_but(letter: str) -> str:
    """A character class: an ASCII letter or digit other than `letter` (either case)."""
    def around(low: str, high: str, skip: str) -> str:
        parts = [(low, chr(ord(skip) - 1)), (chr(ord(skip) + 1), high)]
        return "".join(a if a == b else f"{a}-{b}" for a, b in parts if a <= b)

    return f"[{around('A', 'Z', letter.upper())}{around('a', 'z', letter)}0-9]"


def _not_ending_in_file() -> str:
    """A regex for the rest of a key after a credential word, anchored at the end: the key's
    letters and digits do not end in "file" (is_credential_key's exception, `tokenFile`).
    Each branch: the key ends in the last `n` letters of "file" (n = 0..3), and the letter or
    digit before them, if any, is not the one "file" has there."""
    branches = []
    for n in range(4):
        tail = "".join(f"{_GAP}[{c}{c.upper()}]" for c in "file"[4 - n:])
        branches.append(f"([\\s\\S]*{_alnum_but('file'[3 - n])})?{tail}{_GAP}$")
    return "(" + "|".join(branches) + ")"


def credential_key_schema() -> Schema:
    """The `NoCredentials` definition: at any depth, no object key that is_credential_key
    calls a credential. JSON schema has no case folding and helm's regexes no lookahead, so
    the words become character classes and "not ending in file" a regex of its own; the
    pattern is a `patternProperties` key, so an error names the key's path
    (`/config/aws/secretAccessKey`). tests/deploy checks it decides as is_credential_key."""
    _ensure_path()
    from lbctl.parsing import (  # noqa: PLC0415  (after the path is set)
        _CREDENTIAL_WORDS,  # the parser's own list, so the two cannot drift apart
        CREDENTIALS_HINT,
    )

    for word in _CREDENTIAL_WORDS:
        # the regex below checks "file" after the word only: a word ending in f, fi or fil
        # could end the key's "file" itself
        if any(word.endswith("file"[:n]) for n in (1, 2, 3)):
            raise SystemExit(f"credential word {word!r} ends like 'file': extend gen_schema.py")
    words = "|".join(_folded(w) for w in _CREDENTIAL_WORDS)
    return {
        "description": f"No credential-like keys at any depth: {CREDENTIALS_HINT}.",
        "patternProperties": {f"({words}){_not_ending_in_file()}": {
            "not": {}, "description": f"a credential: {CREDENTIALS_HINT}"}},
        "additionalProperties": {"$ref": "#/$defs/NoCredentials"},
        "items": {"$ref": "#/$defs/NoCredentials"}}


def _ensure_path() -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


HOLD_TIME: Schema = {
    "description": "0 (no keepalives) or 3s..65535s (RFC 4271): seconds, or a duration "
                   "such as 3s, 90s, 1m, 500ms.",
    "anyOf": [{"type": "number", "anyOf": [{"const": 0}, {"minimum": 3, "maximum": 65535}]},
              {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?(ms|s|m)?\\s*$"}]}
BGP_RULES: dict[tuple[str, str], Schema] = {
    ("PeerConfig", "holdTime"): HOLD_TIME,
    ("PeerConfig", "passwordFile"): {
        "type": "string", "pattern": "^(/|$)",
        "description": "An absolute path: a file of a mounted Secret holding the TCP-MD5 "
                       "password (the chart mounts balancer.bgp.passwordSecret at "
                       "/var/run/lbctl/bgp-password)."},
    ("BgpConfig", "peers"): {"minItems": 1},
}
"""What BgpConfig's validators check beyond its field types, said as JSON schema (merged over
the generated field); tests/deploy holds the schema to the parser's verdicts."""


def bgp_schema() -> tuple[Schema, Schema]:
    """(the `baremetal.bgp` schema, its definitions), from lbctl.bgp_config.BgpConfig."""
    _ensure_path()
    from lbctl.bgp_config import BgpConfig  # noqa: PLC0415  (after the path is set)

    generated: Schema = _untitle(BgpConfig.model_json_schema(by_alias=True, mode="validation"))
    defs: Schema = generated.pop("$defs", {})
    defs["BgpConfig"] = generated
    for (model, field), rule in BGP_RULES.items():
        properties = defs[model]["properties"]
        if field not in properties:
            raise SystemExit(f"{model} has no field {field}: update BGP_RULES in gen_schema.py")
        if "anyOf" in rule or "type" in rule:  # a new type: only the default is kept
            kept = {k: v for k, v in properties[field].items() if k == "default"}
            properties[field] = {**kept, **rule}
        else:  # a bound added to the generated type
            properties[field] = {**properties[field], **rule}
    generated["description"] = (
        "baremetal.bgp: the BGP section the baremetal provider pushes to its balancer daemons "
        "(MetalLB's names; lbctl.bgp_config). " + generated.get("description", ""))
    return {"$ref": "#/$defs/BgpConfig"}, defs


def schema() -> Schema:
    """deploy/config.schema.json."""
    _ensure_path()
    from lbctl.controller.config import Config  # noqa: PLC0415  (after the path is set)

    generated: Schema = _untitle(Config.model_json_schema(by_alias=True, mode="validation"))
    defs = generated.setdefault("$defs", {})
    defs["NoCredentials"] = credential_key_schema()
    for section in CREDENTIAL_SECTIONS:
        generated["properties"][section]["$ref"] = "#/$defs/NoCredentials"
    bgp, bgp_defs = bgp_schema()
    clash = set(bgp_defs) & set(defs)
    if clash:
        raise SystemExit(f"definitions {sorted(clash)} in both Config and BgpConfig")
    defs.update(bgp_defs)
    # the provider section stays open (the provider validates the rest), bgp is typed
    generated["properties"]["baremetal"]["properties"] = {"bgp": bgp}
    return {"$schema": DIALECT, **generated, "title": "lbctl config.yaml",
            "description": "The lbctl controller's config file (the ConfigMap's config.yaml). "
                           "Generated from lbctl.controller.config.Config by deploy/gen_schema.py; "
                           "provider sections are checked by `lbctl config validate`; "
                           "credentials are refused in every provider's and plugin's section."}


# --- the chart's values ------------------------------------------------------------------

STRING: Schema = {"type": "string"}
BOOLEAN: Schema = {"type": "boolean"}
PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
STRINGS: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
"""Labels, annotations, a nodeSelector: string values only (Kubernetes refuses others)."""
KUBE_OBJECT: Schema = {"type": "object"}
"""A Kubernetes structure passed through as written (resources, securityContext, affinity):
the API server checks it."""
KUBE_LIST: Schema = {"type": "array", "items": {"type": "object"}}
DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DURATION: Schema = {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$",
                    "description": "A Prometheus duration: 30s, 5m, 1h30m."}


def _owned(properties: dict[str, Schema], description: str = "",
           required: tuple[str, ...] = ()) -> Schema:
    """An object whose keys the chart owns: any other key is a typo, refused."""
    out: Schema = {"type": "object"}
    if description:
        out["description"] = description
    out |= {"additionalProperties": False, "properties": properties}
    if required:
        out["required"] = list(required)
    return out


def _described(base: Schema, description: str) -> Schema:
    return {**base, "description": description}


def _balancer() -> Schema:
    return _owned({
        "enabled": _described(BOOLEAN, "Render the balancer DaemonSet (bare metal)."),
        "instances": {
            "description": "The daemons the controller programs: each becomes an entry of "
                           "config.baremetal.balancers (tokenFile, and caFile with TLS).",
            "type": "array",
            "items": _owned({
                "name": {"type": "string", "maxLength": 63, "pattern": DNS_LABEL},
                "url": {"type": "string", "pattern": "^https?://[^/@]+(/.*)?$",
                        "description": "https://HOST:apiPort with balancer.tls.enabled, "
                                       "else http://; HOST an address or a name."}},
                required=("name", "url"))},
        "apiPort": PORT,
        "workers": {
            "description": "Data plane processes per daemon: 1..64, or auto (one per CPU).",
            "anyOf": [{"type": "integer", "minimum": 1, "maximum": 64},
                      {"type": "string", "pattern": "^(auto|[1-9]|[1-5][0-9]|6[0-4])$"}]},
        "token": _owned({
            "existingSecret": _described(
                STRING, "A Secret of yours with key token (and heartbeat-key): nothing "
                        "generated, renders are byte-identical (GitOps).")}),
        "tls": _owned({
            "enabled": _described(BOOLEAN, "Serve the daemons' API, probes and metrics over "
                                           "HTTPS only; instance urls must be https://."),
            "existingSecret": _described(
                STRING, "A kubernetes.io/tls Secret of yours with tls.crt, tls.key and "
                        "ca.crt (e.g. cert-manager's): nothing generated."),
            "validityDays": {"type": "integer", "minimum": 1, "maximum": 36500,
                             "description": "Lifetime of a generated serving certificate "
                                            "(renewed by an upgrade in its last 30 days)."}}),
        "existingConfigMap": STRING,
        "state": _owned({
            "type": {"enum": ["hostPath", "emptyDir"]},
            "hostPath": {"type": "string", "pattern": "^/"}}),
        "netAdminCapabilities": BOOLEAN,
        "bgp": _owned({
            "enabled": _described(BOOLEAN, "BGP mode without config.baremetal.bgp (static "
                                           "files); config.baremetal.bgp turns it on too."),
            "passwordSecret": _owned({
                "name": _described(STRING, "A Secret of yours with the TCP-MD5 password(s), "
                                           "mounted at /var/run/lbctl/bgp-password."),
                "key": {"type": "string", "pattern": "^([-._a-zA-Z0-9]+)?$",
                        "description": "The key mounted as /var/run/lbctl/bgp-password/KEY "
                                       "(a peer's passwordFile); empty: every key."}})},
            "BGP mode of the daemons: NET_ADMIN (VIPs on lo), the password Secret."),
        "l2": _owned({
            "enabled": _described(BOOLEAN, "L2 announcements (ARP/NDP) with heartbeats "
                                           "between the daemons."),
            "interface": {"type": "string", "pattern": "^([A-Za-z0-9_.-]{1,15})?$",
                          "description": "The LB nodes' interface on the VIPs' segment."},
            "heartbeatPort": PORT,
            "peers": {
                "description": "Every LB node: name (the node's name) and address (its IP); "
                               "the daemons take addresses, never names.",
                "type": "array",
                "items": _owned({
                    "name": {"type": "string", "minLength": 1,
                             "pattern": "^[^=\\s]+$"},
                    "address": {"type": "string",
                                "pattern": "^([0-9]{1,3}(\\.[0-9]{1,3}){3}|"
                                           "[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$"}},
                    required=("name", "address"))},
            "heartbeatKey": _owned({
                "existingSecret": _described(STRING, "Default: the token Secret."),
                "key": {"type": "string", "minLength": 1, "pattern": "^[-._a-zA-Z0-9]+$"}}),
            "privileged": _described(
                BOOLEAN, "Run the balancer container privileged (the daemon writes the ARP "
                         "sysctls itself, and /proc/sys is read-only otherwise).")},
            "L2 announcements of the daemons: --interface, --peer, the heartbeat key."),
        "podSecurityContext": KUBE_OBJECT,
        "securityContext": KUBE_OBJECT,
        "resources": KUBE_OBJECT,
        "updateStrategy": KUBE_OBJECT,
        "service": _owned({"annotations": STRINGS}),
        "podAnnotations": STRINGS,
        "podLabels": STRINGS,
        "priorityClassName": STRING,
        "nodeSelector": STRINGS,
        "tolerations": KUBE_LIST,
        "affinity": KUBE_OBJECT,
    }, "The software balancer daemon (lbctl balancer serve) for the baremetal provider.")


def values_schema(config: Schema | None = None) -> Schema:
    """deploy/helm/lbctl/values.schema.json: the chart's keys, `config` by the config schema
    (its definitions hoisted beside the chart's, its root as $defs/Config)."""
    config = copy.deepcopy(schema() if config is None else config)
    defs: Schema = config.pop("$defs", {})
    config.pop("$schema", None)
    if "Config" in defs:
        raise SystemExit("the config model defines Config: rename the values schema's root")
    defs["Config"] = config
    properties: dict[str, Schema] = {
        "global": _described(KUBE_OBJECT, "A parent chart's global values."),
        "replicaCount": {"type": "integer", "minimum": 0},
        "image": _owned({
            "repository": {"type": "string", "minLength": 1},
            "tag": _described(STRING, "Defaults to the chart's appVersion. A string: use "
                                      "--set-string (--set makes 1.10 the number 1.1)."),
            "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}}),
        "imagePullSecrets": {"type": "array", "items": _owned({"name": STRING},
                                                              required=("name",))},
        "nameOverride": STRING,
        "fullnameOverride": STRING,
        "serviceAccount": _owned({"create": BOOLEAN, "name": STRING,
                                  "annotations": STRINGS}),
        "leaderElection": _owned({"enabled": BOOLEAN}),
        "logFormat": {"enum": ["json", "text"]},
        "metrics": _owned({
            "port": PORT,
            "service": _owned({"enabled": BOOLEAN,
                               "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                               "annotations": STRINGS}),
            "serviceMonitor": _owned({
                "enabled": _described(BOOLEAN, "ServiceMonitors for the controller and the "
                                               "balancer daemons (Prometheus Operator)."),
                "labels": STRINGS,
                "interval": DURATION,
                "scrapeTimeout": DURATION,
                "relabelings": KUBE_LIST,
                "metricRelabelings": KUBE_LIST,
                "balancerServerName": _described(
                    STRING, "The name the daemons' certificate is verified against; empty: "
                            "the host of balancer.instances[0].url.")}),
            "prometheusRule": _owned({
                "enabled": _described(BOOLEAN, "A PrometheusRule with lbctl's alerts."),
                "labels": STRINGS,
                "alertLabels": STRINGS,
                "disabledAlerts": {"type": "array", "items": {"type": "string",
                                                              "pattern": "^Lbctl[A-Za-z0-9]+$"}},
                "withoutAddressFor": DURATION}),
            "dashboard": _owned({
                "enabled": _described(BOOLEAN, "The Grafana dashboard as a ConfigMap for "
                                               "Grafana's dashboard sidecar."),
                "labels": STRINGS,
                "annotations": STRINGS,
                "namespace": STRING})}),
        "config": {"$ref": "#/$defs/Config",
                   "description": "The controller's config.yaml (deploy/config.schema.json)."},
        "existingConfigMap": STRING,
        "podDisruptionBudget": _owned({
            "enabled": BOOLEAN,
            "minAvailable": {"anyOf": [{"type": "integer", "minimum": 0},
                                       {"type": "string", "pattern": "^[0-9]+%$"}]}}),
        "resources": KUBE_OBJECT,
        "podSecurityContext": KUBE_OBJECT,
        "securityContext": KUBE_OBJECT,
        "podAnnotations": STRINGS,
        "podLabels": STRINGS,
        "priorityClassName": STRING,
        "nodeSelector": STRINGS,
        "tolerations": KUBE_LIST,
        "affinity": KUBE_OBJECT,
        "topologySpreadConstraints": KUBE_LIST,
        "env": KUBE_LIST,
        "envFrom": KUBE_LIST,
        "extraVolumes": KUBE_LIST,
        "extraVolumeMounts": KUBE_LIST,
        "balancer": _balancer(),
    }
    return {"$schema": DIALECT, "title": "lbctl chart values",
            "description": "Values of the lbctl Helm chart. Generated by deploy/gen_schema.py; "
                           "`config` is the config file's schema (deploy/config.schema.json).",
            "type": "object", "additionalProperties": False, "properties": properties,
            "$defs": defs}


def _text(doc: Schema) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def render() -> str:
    return _text(schema())


def render_values() -> str:
    return _text(values_schema())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write: exit 1 when a file differs from what is generated")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="the config schema (default: %(default)s)")
    parser.add_argument("--values-output", type=Path, default=VALUES_OUTPUT,
                        help="the chart's values schema (default: %(default)s)")
    args = parser.parse_args(argv)
    config = schema()
    files = {args.output: _text(config), args.values_output: _text(values_schema(config))}
    if args.check:
        stale = 0
        for path, text in files.items():
            try:
                current = path.read_text()
            except OSError as exc:
                print(f"{path}: {exc.strerror}", file=sys.stderr)
                stale += 1
                continue
            if current != text:
                print(f"{path} is stale: run python deploy/gen_schema.py", file=sys.stderr)
                stale += 1
        return 1 if stale else 0
    for path, text in files.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
