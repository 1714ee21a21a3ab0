"""Field numbers of the kube types the sandbox accepts as protobuf (from k8s.io/api's
generated.proto files), keyed by message name.

Each `Field` names the JSON field, its kind (a scalar: string, bytes, bool, int; `time` for
metav1.Time; `map:<value kind>`; or another message of this table), whether it repeats, and
whether it is a pointer upstream (so that zero / false are kept). `KINDS` maps the envelope's
(apiVersion, kind) to the message to decode. Adding a kind is adding its messages here.
"""

from __future__ import annotations

from typing import NamedTuple


class Field(NamedTuple):
    json: str
    kind: str
    repeated: bool = False
    pointer: bool = False


def _f(json: str, kind: str = "string", *, repeated: bool = False,
       pointer: bool = False) -> Field:
    return Field(json, kind, repeated, pointer)


_OBJECT = {1: _f("metadata", "ObjectMeta")}

MESSAGES: dict[str, dict[int, Field]] = {
    # k8s.io/apimachinery/pkg/apis/meta/v1
    "ObjectMeta": {
        1: _f("name"), 2: _f("generateName"), 3: _f("namespace"), 5: _f("uid"),
        6: _f("resourceVersion"), 7: _f("generation", "int"),
        8: _f("creationTimestamp", "time"), 9: _f("deletionTimestamp", "time"),
        10: _f("deletionGracePeriodSeconds", "int", pointer=True),
        11: _f("labels", "map:string"), 12: _f("annotations", "map:string"),
        13: _f("ownerReferences", "OwnerReference", repeated=True),
        14: _f("finalizers", repeated=True),
    },
    "OwnerReference": {
        1: _f("kind"), 3: _f("name"), 4: _f("uid"), 5: _f("apiVersion"),
        6: _f("controller", "bool", pointer=True),
        7: _f("blockOwnerDeletion", "bool", pointer=True),
    },
    "LabelSelector": {
        1: _f("matchLabels", "map:string"),
        2: _f("matchExpressions", "LabelSelectorRequirement", repeated=True),
    },
    "LabelSelectorRequirement": {1: _f("key"), 2: _f("operator"), 3: _f("values", repeated=True)},
    # k8s.io/api/core/v1
    "ServiceAccount": {
        **_OBJECT, 2: _f("secrets", "ObjectReference", repeated=True),
        3: _f("imagePullSecrets", "LocalObjectReference", repeated=True),
        4: _f("automountServiceAccountToken", "bool", pointer=True),
    },
    "ObjectReference": {
        1: _f("kind"), 2: _f("namespace"), 3: _f("name"), 4: _f("uid"), 5: _f("apiVersion"),
        6: _f("resourceVersion"), 7: _f("fieldPath"),
    },
    "LocalObjectReference": {1: _f("name")},
    "Namespace": {**_OBJECT, 2: _f("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: _f("finalizers", repeated=True)},
    "ConfigMap": {
        **_OBJECT, 2: _f("data", "map:string"), 3: _f("binaryData", "map:bytes"),
        4: _f("immutable", "bool", pointer=True),
    },
    "Secret": {
        **_OBJECT, 2: _f("data", "map:bytes"), 3: _f("type"), 4: _f("stringData", "map:string"),
        5: _f("immutable", "bool", pointer=True),
    },
    # k8s.io/api/rbac/v1
    "Role": {**_OBJECT, 2: _f("rules", "PolicyRule", repeated=True)},
    "ClusterRole": {
        **_OBJECT, 2: _f("rules", "PolicyRule", repeated=True),
        3: _f("aggregationRule", "AggregationRule"),
    },
    "AggregationRule": {1: _f("clusterRoleSelectors", "LabelSelector", repeated=True)},
    "PolicyRule": {
        1: _f("verbs", repeated=True), 2: _f("apiGroups", repeated=True),
        3: _f("resources", repeated=True), 4: _f("resourceNames", repeated=True),
        5: _f("nonResourceURLs", repeated=True),
    },
    "RoleBinding": {
        **_OBJECT, 2: _f("subjects", "Subject", repeated=True), 3: _f("roleRef", "RoleRef"),
    },
    "RoleRef": {1: _f("apiGroup"), 2: _f("kind"), 3: _f("name")},
    "Subject": {1: _f("kind"), 2: _f("apiGroup"), 3: _f("name"), 4: _f("namespace")},
    # k8s.io/api/authentication/v1
    "TokenRequest": {**_OBJECT, 2: _f("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {
        1: _f("audiences", repeated=True), 3: _f("boundObjectRef", "BoundObjectReference"),
        4: _f("expirationSeconds", "int", pointer=True),
    },
    "BoundObjectReference": {1: _f("kind"), 2: _f("apiVersion"), 3: _f("name"), 4: _f("uid")},
    "TokenReview": {**_OBJECT, 2: _f("spec", "TokenReviewSpec")},
    "TokenReviewSpec": {1: _f("token"), 2: _f("audiences", repeated=True)},
    "SelfSubjectReview": dict(_OBJECT),
    # k8s.io/api/authorization/v1
    "SelfSubjectAccessReview": {**_OBJECT, 2: _f("spec", "SelfSubjectAccessReviewSpec")},
    "SelfSubjectAccessReviewSpec": {
        1: _f("resourceAttributes", "ResourceAttributes"),
        2: _f("nonResourceAttributes", "NonResourceAttributes"),
    },
    "SubjectAccessReview": {**_OBJECT, 2: _f("spec", "SubjectAccessReviewSpec")},
    "SubjectAccessReviewSpec": {
        1: _f("resourceAttributes", "ResourceAttributes"),
        2: _f("nonResourceAttributes", "NonResourceAttributes"),
        3: _f("user"), 4: _f("groups", repeated=True), 5: _f("extra", "map:ExtraValue"),
        6: _f("uid"),
    },
    "ExtraValue": {1: _f("items", repeated=True)},
    "ResourceAttributes": {
        1: _f("namespace"), 2: _f("verb"), 3: _f("group"), 4: _f("version"), 5: _f("resource"),
        6: _f("subresource"), 7: _f("name"),
    },
    "NonResourceAttributes": {1: _f("path"), 2: _f("verb")},
    "SelfSubjectRulesReview": {**_OBJECT, 2: _f("spec", "SelfSubjectRulesReviewSpec")},
    "SelfSubjectRulesReviewSpec": {1: _f("namespace")},
    "Service": {**_OBJECT, 2: _f("spec", "ServiceSpec"), 3: _f("status", "ServiceStatus")},
    "ServiceSpec": {
        1: _f("ports", "ServicePort", repeated=True), 2: _f("selector", "map:string"),
        3: _f("clusterIP"), 4: _f("type"), 5: _f("externalIPs", repeated=True),
        7: _f("sessionAffinity"), 8: _f("loadBalancerIP"),
        9: _f("loadBalancerSourceRanges", repeated=True), 10: _f("externalName"),
        11: _f("externalTrafficPolicy"), 12: _f("healthCheckNodePort", "int"),
        13: _f("publishNotReadyAddresses", "bool"),
        14: _f("sessionAffinityConfig", "SessionAffinityConfig"),
        17: _f("ipFamilyPolicy", pointer=True), 18: _f("clusterIPs", repeated=True),
        19: _f("ipFamilies", repeated=True),
        20: _f("allocateLoadBalancerNodePorts", "bool", pointer=True),
        21: _f("loadBalancerClass", pointer=True), 22: _f("internalTrafficPolicy", pointer=True),
        23: _f("trafficDistribution", pointer=True),
    },
    "ServicePort": {1: _f("name"), 2: _f("protocol"), 3: _f("port", "int"),
                    4: _f("targetPort", "IntOrString"), 5: _f("nodePort", "int"),
                    6: _f("appProtocol", pointer=True)},
    "IntOrString": {1: _f("type", "int"), 2: _f("intVal", "int"), 3: _f("strVal")},
    "SessionAffinityConfig": {1: _f("clientIP", "ClientIPConfig")},
    "ClientIPConfig": {1: _f("timeoutSeconds", "int", pointer=True)},
    "ServiceStatus": {1: _f("loadBalancer", "LoadBalancerStatus")},
    "LoadBalancerStatus": {1: _f("ingress", "LoadBalancerIngress", repeated=True)},
    "LoadBalancerIngress": {1: _f("ip"), 2: _f("hostname"), 3: _f("ipMode", pointer=True)},
}
MESSAGES["ClusterRoleBinding"] = MESSAGES["RoleBinding"]
MESSAGES["LocalSubjectAccessReview"] = MESSAGES["SubjectAccessReview"]

KINDS: dict[tuple[str, str], str] = {
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Service"): "Service",
    ("v1", "Namespace"): "Namespace",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io/v1", "TokenReview"): "TokenReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    **{("rbac.authorization.k8s.io/v1", k): k
       for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")},
    **{("authorization.k8s.io/v1", k): k
       for k in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview",
                 "SelfSubjectRulesReview")},
}
