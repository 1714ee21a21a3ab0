"""Namespaces carry `kubernetes.io/metadata.name` as kube-apiserver sets it, and their labels
are listed, selected on and watched like any other object's (pools' namespaceSelectors read
them through a Namespace informer)."""

from __future__ import annotations

import pytest
from kubernetes import client, watch

pytestmark = pytest.mark.integration

NAME_LABEL = "kubernetes.io/metadata.name"


def test_the_name_label_is_set_on_create_and_kept_on_update(core: client.CoreV1Api) -> None:
    made = core.create_namespace({"metadata": {"generateName": "ns-label-",
                                               "labels": {NAME_LABEL: "lies", "foo": "bar"}}})
    name = made.metadata.name
    try:
        assert made.metadata.labels == {NAME_LABEL: name, "foo": "bar"}
        assert core.read_namespace(name).metadata.labels[NAME_LABEL] == name
        dropped = core.patch_namespace(name, {"metadata": {"labels": {NAME_LABEL: None}}})
        assert dropped.metadata.labels == {NAME_LABEL: name, "foo": "bar"}
        changed = core.patch_namespace(name, {"metadata": {"labels": {NAME_LABEL: "other"}}})
        assert changed.metadata.labels[NAME_LABEL] == name
        body = core.read_namespace(name)
        body.metadata.labels = {"only": "this"}
        replaced = core.replace_namespace(name, body)
        assert replaced.metadata.labels == {"only": "this", NAME_LABEL: name}
        assert core.read_namespace("default").metadata.labels == {NAME_LABEL: "default"}
    finally:
        core.delete_namespace(name)


def test_namespaces_list_by_label_and_watch_label_changes(core: client.CoreV1Api) -> None:
    made = core.create_namespace({"metadata": {"generateName": "ns-watch-"}})
    name = made.metadata.name
    try:
        start = core.list_namespace().metadata.resource_version
        assert name not in [n.metadata.name for n in
                            core.list_namespace(label_selector="foo=bar").items]
        core.patch_namespace(name, {"metadata": {"labels": {"foo": "bar"}}})
        assert [n.metadata.name for n in core.list_namespace(label_selector="foo=bar").items
                ] == [name]
        assert [n.metadata.name for n in core.list_namespace(
            label_selector=f"{NAME_LABEL}={name}").items] == [name]
        seen = []
        w = watch.Watch()
        for event in w.stream(core.list_namespace, resource_version=start, timeout_seconds=10,
                              field_selector=f"metadata.name={name}"):
            seen.append((event["type"], dict(event["object"].metadata.labels)))
            w.stop()
        assert seen == [("MODIFIED", {NAME_LABEL: name, "foo": "bar"})]
    finally:
        core.delete_namespace(name)
