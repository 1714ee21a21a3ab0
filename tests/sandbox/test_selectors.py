"""Label and field selectors against kube-apiserver 1.33's parser, matcher and messages."""

from __future__ import annotations

from typing import Any

import pytest

from lbctl.sandbox.errors import ApiError
from lbctl.sandbox.storage.selectors import (
    field_labels,
    field_set,
    label_selector_from_spec,
    parse_field_selector,
    parse_label_selector,
    supported_fields,
)
from tests.sandbox.kube_messages import LABEL_VALUE, NAME_PART

pytestmark = pytest.mark.unit


def _bad_request(call: Any, *args: Any) -> str:
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    return caught.value.message


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("", {}, True),
    ("", {"a": "b"}, True),
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a==b", {"a": "b"}, True),
    ("a!=b", {}, True),
    ("a!=b", {"a": "b"}, False),
    ("a", {"a": ""}, True),
    ("a", {}, False),
    ("!a", {}, True),
    ("!a", {"a": "x"}, False),
    ("a in (x,y)", {"a": "y"}, True),
    ("a in (x,y)", {}, False),
    ("a notin (x)", {}, True),
    ("a notin (x)", {"a": "x"}, False),
    ("a in ()", {"a": ""}, True),
    ("a in (x,,y)", {"a": ""}, True),
    ("a=", {"a": ""}, True),
    ("a>5", {"a": "6"}, True),
    ("a>5", {"a": "5"}, False),
    ("a<5", {"a": "-7"}, True),
    ("a<5", {"a": "x"}, False),
    ("a>5", {}, False),
    ("  a = b ,\tc  ", {"a": "b", "c": "1"}, True),
    ("a=b,c", {"a": "b"}, False),
    ("in in (in,notin)", {"in": "notin"}, True),
    ("example.com/app=web", {"example.com/app": "web"}, True),
])
def test_label_selector_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is expected


@pytest.mark.parametrize(("selector", "canonical"), [
    ("b=1,a in (y, x)", "a in (x,y),b=1"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("!a,b!=c,d==e,f>1,g<2", "!a,b!=c,d==e,f>1,g<2"),
])
def test_label_selector_string_is_upstreams(selector: str, canonical: str) -> None:
    assert str(parse_label_selector(selector)) == canonical


@pytest.mark.parametrize(("selector", "message"), [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a!b", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
    ("a,", "found '', expected: identifier after ','"),
    ("a=b,,c", "found ',', expected: identifier after ','"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a notin", "unable to parse requirement: found '' expected: '('"),
    ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
    ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("a in (,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("a==(", "unable to parse requirement: found '(', expected: identifier"),
    ("a_=b", f'unable to parse requirement: <nil>: Invalid value: "a_": {NAME_PART}'),
    ("a>x", 'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer"),
    ("a>-5", f'unable to parse requirement: values[0][a]: Invalid value: "-5": {LABEL_VALUE}'),
    ("a=" + "v" * 64, f'unable to parse requirement: values[0][a]: Invalid value: "{"v" * 64}": '
                      "must be no more than 63 characters"),
    ("a=b_", f'unable to parse requirement: values[0][a]: Invalid value: "b_": {LABEL_VALUE}'),
    ("a/b/c", 'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name '
              "must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
              "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
              "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an "
              "optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"),
    ("/a", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be '
           "non-empty"),
])
def test_label_selector_errors(selector: str, message: str) -> None:
    assert _bad_request(parse_label_selector, selector) == message


def test_label_selector_from_spec_none_selects_nothing_and_empty_everything() -> None:
    assert not label_selector_from_spec(None).matches({})
    assert not label_selector_from_spec(None).matches({"a": "b"})
    assert label_selector_from_spec({}).matches({"a": "b"})
    assert label_selector_from_spec({"matchLabels": {}}).empty


def test_label_selector_from_spec_combines_labels_and_expressions() -> None:
    selector = label_selector_from_spec({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                             {"key": "legacy", "operator": "DoesNotExist"},
                             {"key": "zone", "operator": "Exists"},
                             {"key": "env", "operator": "NotIn", "values": ["dev"]}]})
    assert str(selector) == "app=web,env notin (dev),!legacy,tier in (a,b),zone"
    assert selector.matches({"app": "web", "tier": "b", "zone": "z"})
    assert not selector.matches({"app": "web", "tier": "b", "zone": "z", "legacy": "1"})
    assert not selector.matches({"app": "web", "tier": "b", "zone": "z", "env": "dev"})
    assert not selector.matches({"app": "web", "tier": "c", "zone": "z"})


@pytest.mark.parametrize(("spec", "message"), [
    ({"matchExpressions": [{"key": "a", "operator": "Equals"}]},
     '"Equals" is not a valid label selector operator'),
    ({"matchExpressions": [{"key": "a", "operator": "In"}]},
     "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"),
    ({"matchLabels": {"a": "b c"}}, f'values[0][a]: Invalid value: "b c": {LABEL_VALUE}'),
    ({"matchLabels": {"a_": "b"}}, f'key: Invalid value: "a_": {NAME_PART}'),
])
def test_label_selector_from_spec_errors(spec: dict[str, Any], message: str) -> None:
    assert _bad_request(label_selector_from_spec, spec) == message


POD = {"metadata": {"name": "web-1", "namespace": "prod"},
       "spec": {"nodeName": "node-a", "restartPolicy": "Always", "schedulerName": "default",
                "serviceAccountName": "sa", "hostNetwork": True},
       "status": {"phase": "Running", "podIP": "10.0.0.9",
                  "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}]}}


@pytest.mark.parametrize(("selector", "expected"), [
    ("", True),
    ("spec.nodeName=node-a", True),
    ("spec.nodeName==node-a", True),
    ("spec.nodeName!=node-a", False),
    ("spec.host=node-a", True),
    ("metadata.name=web-1,metadata.namespace=prod", True),
    ("metadata.name=web-1,metadata.namespace=dev", False),
    ("status.phase=Running,spec.hostNetwork=true", True),
    ("status.podIP=10.0.0.9", True),
    ("status.podIPs=10.0.0.9", False),
    ("status.podIPs=", True),
    ("status.nominatedNodeName=", True),
    ("spec.restartPolicy=Always,spec.schedulerName=default,spec.serviceAccountName=sa,", True),
])
def test_pod_field_selectors(selector: str, expected: bool) -> None:
    parsed = parse_field_selector(selector, field_labels("pods"))
    assert parsed.matches(field_set("pods", POD)) is expected


def test_field_selector_value_escapes() -> None:
    obj = {"metadata": {"name": "a,b=c\\d", "namespace": "ns"}}
    parsed = parse_field_selector(r"metadata.name=a\,b\=c\\d", supported_fields("configmaps"))
    assert parsed.matches(field_set("configmaps", obj))
    assert str(parsed) == r"metadata.name=a\,b\=c\\d"
    assert parsed.requires_exact_match("metadata.name") == "a,b=c\\d"


@pytest.mark.parametrize(("resource", "selector", "message"), [
    ("configmaps", "spec.foo=1",
     '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("deployments.apps", "status.replicas=1",
     '"status.replicas" is not a known field selector: only "metadata.name", '
     '"metadata.namespace"'),
    ("pods", "spec.foo=1", "field label not supported: spec.foo"),
    ("pods", "z=1,b=2", "field label not supported: b"),
    ("nodes", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("namespaces", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("events", "regarding.name=x", "field label not supported: regarding.name"),
    ("events.events.k8s.io", "involvedObject.name=x",
     "field label not supported: involvedObject.name"),
    ("pods", "spec.nodeName", "invalid selector: 'spec.nodeName'; can't understand "
                              "'spec.nodeName'"),
    ("pods", "a=1,b", "invalid selector: 'a=1,b'; can't understand 'b'"),
    ("pods", "spec.nodeName=a=b", "invalid field selector: unescaped character in value: 61"),
    ("pods", "spec.nodeName=a\\x", "invalid field selector: invalid escape sequence: \\x"),
    ("pods", "spec.nodeName=a\\", "invalid field selector: invalid escape sequence: \\"),
])
def test_field_selector_errors(resource: str, selector: str, message: str) -> None:
    assert _bad_request(parse_field_selector, selector, field_labels(resource)) == message


def test_supported_fields_per_resource() -> None:
    assert supported_fields("configmaps") == {"metadata.name", "metadata.namespace"}
    assert supported_fields("nodes") == {"metadata.name", "spec.unschedulable"}
    assert supported_fields("namespaces") == {"metadata.name", "status.phase"}
    assert supported_fields("secrets") == {"metadata.name", "metadata.namespace", "type"}
    assert supported_fields("services") == {"metadata.name", "metadata.namespace",
                                            "spec.clusterIP", "spec.type"}
    assert "reportingComponent" in supported_fields("events")
    assert {"regarding.kind", "reportingController"} <= supported_fields("events.events.k8s.io")


CORE_EVENT = {"metadata": {"name": "e1", "namespace": "prod"},
              "involvedObject": {"kind": "Service", "name": "web", "namespace": "prod",
                                 "uid": "u-1", "apiVersion": "v1"},
              "reason": "EnsuredLoadBalancer", "type": "Normal",
              "source": {"component": "lbctl"}, "reportingComponent": "lbctl"}
EVENTS_V1_EVENT = {"metadata": {"name": "e1", "namespace": "prod"},
                   "regarding": {"kind": "Service", "name": "web", "namespace": "prod",
                                 "uid": "u-1", "apiVersion": "v1"},
                   "reason": "EnsuredLoadBalancer", "type": "Normal",
                   "deprecatedSource": {"component": "lbctl"}, "reportingController": "lbctl"}


@pytest.mark.parametrize("event", [CORE_EVENT, EVENTS_V1_EVENT])
def test_event_field_selectors_share_core_fields(event: dict[str, Any]) -> None:
    core = parse_field_selector(
        "involvedObject.kind=Service,involvedObject.name=web,reason=EnsuredLoadBalancer,"
        "source=lbctl,reportingComponent=lbctl,type=Normal", field_labels("events"))
    v1 = parse_field_selector("regarding.kind=Service,regarding.name=web,reportingController=lbctl",
                              field_labels("events.events.k8s.io"))
    for resource in ("events", "events.events.k8s.io"):
        fields = field_set(resource, event)
        assert core.matches(fields)
        assert v1.matches(fields)
        assert fields["involvedObject.uid"] == "u-1"
        assert fields["involvedObject.fieldPath"] == ""


@pytest.mark.parametrize(("resource", "obj", "expected"), [
    ("nodes", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}},
     {"metadata.name": "n", "metadata.namespace": "", "spec.unschedulable": "true"}),
    ("nodes", {"metadata": {"name": "n"}},
     {"metadata.name": "n", "metadata.namespace": "", "spec.unschedulable": "false"}),
    ("secrets", {"metadata": {"name": "s", "namespace": "d"}, "type": "Opaque"},
     {"metadata.name": "s", "metadata.namespace": "d", "type": "Opaque"}),
    ("services", {"metadata": {"name": "s", "namespace": "d"},
                  "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.5"}},
     {"metadata.name": "s", "metadata.namespace": "d", "spec.type": "LoadBalancer",
      "spec.clusterIP": "10.96.0.5"}),
    ("namespaces", {"metadata": {"name": "d"}, "status": {"phase": "Active"}},
     {"metadata.name": "d", "metadata.namespace": "", "status.phase": "Active"}),
    ("configmaps", {"metadata": {"name": "c", "namespace": "d"}, "data": {"k": "v"}},
     {"metadata.name": "c", "metadata.namespace": "d"}),
])
def test_field_set(resource: str, obj: dict[str, Any], expected: dict[str, str]) -> None:
    assert field_set(resource, obj) == expected


def test_alias_labels_match_without_the_renames_too() -> None:
    plain = parse_field_selector("regarding.name=web", supported_fields("events.events.k8s.io"))
    assert plain.matches(field_set("events.events.k8s.io", CORE_EVENT))
    host = parse_field_selector("spec.host=node-a", supported_fields("pods"))
    assert host.matches(field_set("pods", POD))


def test_pod_ip_comes_from_pod_ips_first_then_pod_ip() -> None:
    assert field_set("pods", {"status": {"podIP": "10.0.0.1"}})["status.podIP"] == "10.0.0.1"
    assert field_set("pods", {})["status.podIP"] == ""
    assert field_set("pods", {})["spec.hostNetwork"] == "false"
