"""Field numbers of the kube types the sandbox accepts as protobuf (from k8s.io/api's
generated.proto files), keyed by message name.

Each `Field` names the JSON field, its kind (a scalar: string, bytes, bool, int; `time` for
metav1.Time; `map:<value kind>`; or another message of this table), whether it repeats, and
whether it is a pointer upstream (so that zero / false / `{}` are kept). A field whose JSON name
is empty is embedded upstream (`json:",inline"`): its message's fields join the parent's.
`KINDS` maps the envelope's (apiVersion, kind) to the message to decode. Adding a kind is adding
its messages here.

The numbers were read from upstream's `staging/src/k8s.io/api/{core,apps,policy,rbac,
authentication,authorization}/v1/generated.proto`, apimachinery's `meta/v1`, `util/intstr` and
`api/resource` (Quantity is `{1: string}`). Status messages of workloads are left out: a create
resets status, and fields missing from a table are skipped.

Not split: a data table, one entry per upstream message; split by API group it would only be
harder to check against the .proto files it was read from.
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


def _p(json: str, kind: str = "string") -> Field:
    """A pointer field upstream: zero, false and `{}` are kept."""
    return Field(json, kind, pointer=True)


def _r(json: str, kind: str = "string") -> Field:
    return Field(json, kind, repeated=True)


_OBJECT = {1: _f("metadata", "ObjectMeta")}
_INLINE_REF = {1: _f("", "LocalObjectReference")}
"""`LocalObjectReference` embedded in a selector/source: its `name` joins the parent."""

_META: dict[str, dict[int, Field]] = {
    # k8s.io/apimachinery/pkg/apis/meta/v1, util/intstr, api/resource
    "ObjectMeta": {
        1: _f("name"), 2: _f("generateName"), 3: _f("namespace"), 5: _f("uid"),
        6: _f("resourceVersion"), 7: _f("generation", "int"),
        8: _f("creationTimestamp", "time"), 9: _f("deletionTimestamp", "time"),
        10: _p("deletionGracePeriodSeconds", "int"),
        11: _f("labels", "map:string"), 12: _f("annotations", "map:string"),
        13: _r("ownerReferences", "OwnerReference"), 14: _r("finalizers"),
    },
    "OwnerReference": {
        1: _f("kind"), 3: _f("name"), 4: _f("uid"), 5: _f("apiVersion"),
        6: _p("controller", "bool"), 7: _p("blockOwnerDeletion", "bool"),
    },
    "LabelSelector": {
        1: _f("matchLabels", "map:string"),
        2: _r("matchExpressions", "LabelSelectorRequirement"),
    },
    "LabelSelectorRequirement": {1: _f("key"), 2: _f("operator"), 3: _r("values")},
    "IntOrString": {1: _f("type", "int"), 2: _f("intVal", "int"), 3: _f("strVal")},
    "Quantity": {1: _f("string")},
}

_CORE: dict[str, dict[int, Field]] = {
    # k8s.io/api/core/v1: objects kubectl creates
    "ServiceAccount": {
        **_OBJECT, 2: _r("secrets", "ObjectReference"),
        3: _r("imagePullSecrets", "LocalObjectReference"),
        4: _p("automountServiceAccountToken", "bool"),
    },
    "ObjectReference": {
        1: _f("kind"), 2: _f("namespace"), 3: _f("name"), 4: _f("uid"), 5: _f("apiVersion"),
        6: _f("resourceVersion"), 7: _f("fieldPath"),
    },
    "LocalObjectReference": {1: _f("name")},
    "Namespace": {**_OBJECT, 2: _f("spec", "NamespaceSpec")},
    "NamespaceSpec": {1: _r("finalizers")},
    "ConfigMap": {
        **_OBJECT, 2: _f("data", "map:string"), 3: _f("binaryData", "map:bytes"),
        4: _p("immutable", "bool"),
    },
    "Secret": {
        **_OBJECT, 2: _f("data", "map:bytes"), 3: _f("type"), 4: _f("stringData", "map:string"),
        5: _p("immutable", "bool"),
    },
    "Service": {**_OBJECT, 2: _f("spec", "ServiceSpec"), 3: _f("status", "ServiceStatus")},
    "ServiceSpec": {
        1: _r("ports", "ServicePort"), 2: _f("selector", "map:string"),
        3: _f("clusterIP"), 4: _f("type"), 5: _r("externalIPs"),
        7: _f("sessionAffinity"), 8: _f("loadBalancerIP"),
        9: _r("loadBalancerSourceRanges"), 10: _f("externalName"),
        11: _f("externalTrafficPolicy"), 12: _f("healthCheckNodePort", "int"),
        13: _f("publishNotReadyAddresses", "bool"),
        14: _p("sessionAffinityConfig", "SessionAffinityConfig"),
        17: _p("ipFamilyPolicy"), 18: _r("clusterIPs"), 19: _r("ipFamilies"),
        20: _p("allocateLoadBalancerNodePorts", "bool"),
        21: _p("loadBalancerClass"), 22: _p("internalTrafficPolicy"),
        23: _p("trafficDistribution"),
    },
    "ServicePort": {1: _f("name"), 2: _f("protocol"), 3: _f("port", "int"),
                    4: _f("targetPort", "IntOrString"), 5: _f("nodePort", "int"),
                    6: _p("appProtocol")},
    "SessionAffinityConfig": {1: _p("clientIP", "ClientIPConfig")},
    "ClientIPConfig": {1: _p("timeoutSeconds", "int")},
    "ServiceStatus": {1: _f("loadBalancer", "LoadBalancerStatus")},
    "LoadBalancerStatus": {1: _r("ingress", "LoadBalancerIngress")},
    "LoadBalancerIngress": {1: _f("ip"), 2: _f("hostname"), 3: _p("ipMode"),
                            4: _r("ports", "PortStatus")},
    "PortStatus": {1: _f("port", "int"), 2: _f("protocol"), 3: _p("error")},
    "Endpoints": {**_OBJECT, 2: _r("subsets", "EndpointSubset")},
    "EndpointSubset": {
        1: _r("addresses", "EndpointAddress"), 2: _r("notReadyAddresses", "EndpointAddress"),
        3: _r("ports", "EndpointPort"),
    },
    "EndpointAddress": {1: _f("ip"), 2: _p("targetRef", "ObjectReference"), 3: _f("hostname"),
                        4: _p("nodeName")},
    "EndpointPort": {1: _f("name"), 2: _f("port", "int"), 3: _f("protocol"),
                     4: _p("appProtocol")},
}

_PODS: dict[str, dict[int, Field]] = {
    # k8s.io/api/core/v1: the pod template every workload carries
    "PodTemplateSpec": {**_OBJECT, 2: _f("spec", "PodSpec")},
    "PodSpec": {
        1: _r("volumes", "Volume"), 20: _r("initContainers", "Container"),
        2: _r("containers", "Container"), 3: _f("restartPolicy"),
        4: _p("terminationGracePeriodSeconds", "int"), 5: _p("activeDeadlineSeconds", "int"),
        6: _f("dnsPolicy"), 7: _f("nodeSelector", "map:string"),
        8: _f("serviceAccountName"), 9: _f("serviceAccount"),
        21: _p("automountServiceAccountToken", "bool"), 10: _f("nodeName"),
        11: _f("hostNetwork", "bool"), 12: _f("hostPID", "bool"), 13: _f("hostIPC", "bool"),
        27: _p("shareProcessNamespace", "bool"),
        14: _p("securityContext", "PodSecurityContext"),
        15: _r("imagePullSecrets", "LocalObjectReference"), 16: _f("hostname"),
        17: _f("subdomain"), 18: _p("affinity", "Affinity"), 19: _f("schedulerName"),
        22: _r("tolerations", "Toleration"), 23: _r("hostAliases", "HostAlias"),
        24: _f("priorityClassName"), 25: _p("priority", "int"),
        26: _p("dnsConfig", "PodDNSConfig"), 28: _r("readinessGates", "PodReadinessGate"),
        29: _p("runtimeClassName"), 30: _p("enableServiceLinks", "bool"),
        31: _p("preemptionPolicy"), 32: _f("overhead", "map:Quantity"),
        33: _r("topologySpreadConstraints", "TopologySpreadConstraint"),
        35: _p("setHostnameAsFQDN", "bool"), 36: _p("os", "PodOS"),
        37: _p("hostUsers", "bool"), 38: _r("schedulingGates", "PodSchedulingGate"),
        39: _r("resourceClaims", "PodResourceClaim"),
        40: _p("resources", "ResourceRequirements"), 41: _p("hostnameOverride"),
    },
    "Container": {
        1: _f("name"), 2: _f("image"), 3: _r("command"), 4: _r("args"), 5: _f("workingDir"),
        6: _r("ports", "ContainerPort"), 19: _r("envFrom", "EnvFromSource"),
        7: _r("env", "EnvVar"), 8: _f("resources", "ResourceRequirements"),
        23: _r("resizePolicy", "ContainerResizePolicy"), 24: _p("restartPolicy"),
        9: _r("volumeMounts", "VolumeMount"), 21: _r("volumeDevices", "VolumeDevice"),
        10: _p("livenessProbe", "Probe"), 11: _p("readinessProbe", "Probe"),
        22: _p("startupProbe", "Probe"), 12: _p("lifecycle", "Lifecycle"),
        13: _f("terminationMessagePath"), 20: _f("terminationMessagePolicy"),
        14: _f("imagePullPolicy"), 15: _p("securityContext", "SecurityContext"),
        16: _f("stdin", "bool"), 17: _f("stdinOnce", "bool"), 18: _f("tty", "bool"),
    },
    "ContainerPort": {1: _f("name"), 2: _f("hostPort", "int"), 3: _f("containerPort", "int"),
                      4: _f("protocol"), 5: _f("hostIP")},
    "ContainerResizePolicy": {1: _f("resourceName"), 2: _f("restartPolicy")},
    "EnvVar": {1: _f("name"), 2: _f("value"), 3: _p("valueFrom", "EnvVarSource")},
    "EnvVarSource": {
        1: _p("fieldRef", "ObjectFieldSelector"),
        2: _p("resourceFieldRef", "ResourceFieldSelector"),
        3: _p("configMapKeyRef", "ConfigMapKeySelector"),
        4: _p("secretKeyRef", "SecretKeySelector"), 5: _p("fileKeyRef", "FileKeySelector"),
    },
    "ObjectFieldSelector": {1: _f("apiVersion"), 2: _f("fieldPath")},
    "ResourceFieldSelector": {1: _f("containerName"), 2: _f("resource"),
                              3: _f("divisor", "Quantity")},
    "ConfigMapKeySelector": {**_INLINE_REF, 2: _f("key"), 3: _p("optional", "bool")},
    "SecretKeySelector": {**_INLINE_REF, 2: _f("key"), 3: _p("optional", "bool")},
    "FileKeySelector": {1: _f("volumeName"), 2: _f("path"), 3: _f("key"),
                        4: _p("optional", "bool")},
    "EnvFromSource": {1: _f("prefix"), 2: _p("configMapRef", "ConfigMapEnvSource"),
                      3: _p("secretRef", "SecretEnvSource")},
    "ConfigMapEnvSource": {**_INLINE_REF, 2: _p("optional", "bool")},
    "SecretEnvSource": {**_INLINE_REF, 2: _p("optional", "bool")},
    "ResourceRequirements": {1: _f("limits", "map:Quantity"), 2: _f("requests", "map:Quantity"),
                             3: _r("claims", "ResourceClaim")},
    "ResourceClaim": {1: _f("name"), 2: _f("request")},
    "VolumeMount": {1: _f("name"), 2: _f("readOnly", "bool"), 7: _p("recursiveReadOnly"),
                    3: _f("mountPath"), 4: _f("subPath"), 5: _p("mountPropagation"),
                    6: _f("subPathExpr")},
    "VolumeDevice": {1: _f("name"), 2: _f("devicePath")},
    "Probe": {
        1: _f("", "ProbeHandler"), 2: _f("initialDelaySeconds", "int"),
        3: _f("timeoutSeconds", "int"), 4: _f("periodSeconds", "int"),
        5: _f("successThreshold", "int"), 6: _f("failureThreshold", "int"),
        7: _p("terminationGracePeriodSeconds", "int"),
    },
    "ProbeHandler": {1: _p("exec", "ExecAction"), 2: _p("httpGet", "HTTPGetAction"),
                     3: _p("tcpSocket", "TCPSocketAction"), 4: _p("grpc", "GRPCAction")},
    "ExecAction": {1: _r("command")},
    "HTTPGetAction": {1: _f("path"), 2: _f("port", "IntOrString"), 3: _f("host"),
                      4: _f("scheme"), 5: _r("httpHeaders", "HTTPHeader")},
    "HTTPHeader": {1: _f("name"), 2: _f("value")},
    "TCPSocketAction": {1: _f("port", "IntOrString"), 2: _f("host")},
    "GRPCAction": {1: _f("port", "int"), 2: _p("service")},
    "Lifecycle": {1: _p("postStart", "LifecycleHandler"), 2: _p("preStop", "LifecycleHandler"),
                  3: _p("stopSignal")},
    "LifecycleHandler": {1: _p("exec", "ExecAction"), 2: _p("httpGet", "HTTPGetAction"),
                         3: _p("tcpSocket", "TCPSocketAction"), 4: _p("sleep", "SleepAction")},
    "SleepAction": {1: _f("seconds", "int")},
    "SecurityContext": {
        1: _p("capabilities", "Capabilities"), 2: _p("privileged", "bool"),
        3: _p("seLinuxOptions", "SELinuxOptions"),
        10: _p("windowsOptions", "WindowsSecurityContextOptions"), 4: _p("runAsUser", "int"),
        8: _p("runAsGroup", "int"), 5: _p("runAsNonRoot", "bool"),
        6: _p("readOnlyRootFilesystem", "bool"), 7: _p("allowPrivilegeEscalation", "bool"),
        9: _p("procMount"), 11: _p("seccompProfile", "SeccompProfile"),
        12: _p("appArmorProfile", "AppArmorProfile"),
    },
    "PodSecurityContext": {
        1: _p("seLinuxOptions", "SELinuxOptions"),
        8: _p("windowsOptions", "WindowsSecurityContextOptions"), 2: _p("runAsUser", "int"),
        6: _p("runAsGroup", "int"), 3: _p("runAsNonRoot", "bool"),
        4: _r("supplementalGroups", "int"), 12: _p("supplementalGroupsPolicy"),
        5: _p("fsGroup", "int"), 7: _r("sysctls", "Sysctl"), 9: _p("fsGroupChangePolicy"),
        10: _p("seccompProfile", "SeccompProfile"), 11: _p("appArmorProfile", "AppArmorProfile"),
        13: _p("seLinuxChangePolicy"),
    },
    "Capabilities": {1: _r("add"), 2: _r("drop")},
    "SELinuxOptions": {1: _f("user"), 2: _f("role"), 3: _f("type"), 4: _f("level")},
    "WindowsSecurityContextOptions": {1: _p("gmsaCredentialSpecName"),
                                      2: _p("gmsaCredentialSpec"), 3: _p("runAsUserName"),
                                      4: _p("hostProcess", "bool")},
    "SeccompProfile": {1: _f("type"), 2: _p("localhostProfile")},
    "AppArmorProfile": {1: _f("type"), 2: _p("localhostProfile")},
    "Sysctl": {1: _f("name"), 2: _f("value")},
    "Affinity": {1: _p("nodeAffinity", "NodeAffinity"), 2: _p("podAffinity", "PodAffinity"),
                 3: _p("podAntiAffinity", "PodAffinity")},
    "NodeAffinity": {
        1: _p("requiredDuringSchedulingIgnoredDuringExecution", "NodeSelector"),
        2: _r("preferredDuringSchedulingIgnoredDuringExecution", "PreferredSchedulingTerm"),
    },
    "NodeSelector": {1: _r("nodeSelectorTerms", "NodeSelectorTerm")},
    "NodeSelectorTerm": {1: _r("matchExpressions", "NodeSelectorRequirement"),
                         2: _r("matchFields", "NodeSelectorRequirement")},
    "NodeSelectorRequirement": {1: _f("key"), 2: _f("operator"), 3: _r("values")},
    "PreferredSchedulingTerm": {1: _f("weight", "int"),
                                2: _f("preference", "NodeSelectorTerm")},
    "PodAffinity": {  # PodAntiAffinity has the same fields and numbers
        1: _r("requiredDuringSchedulingIgnoredDuringExecution", "PodAffinityTerm"),
        2: _r("preferredDuringSchedulingIgnoredDuringExecution", "WeightedPodAffinityTerm"),
    },
    "PodAffinityTerm": {
        1: _p("labelSelector", "LabelSelector"), 2: _r("namespaces"), 3: _f("topologyKey"),
        4: _p("namespaceSelector", "LabelSelector"), 5: _r("matchLabelKeys"),
        6: _r("mismatchLabelKeys"),
    },
    "WeightedPodAffinityTerm": {1: _f("weight", "int"),
                                2: _f("podAffinityTerm", "PodAffinityTerm")},
    "Toleration": {1: _f("key"), 2: _f("operator"), 3: _f("value"), 4: _f("effect"),
                   5: _p("tolerationSeconds", "int")},
    "TopologySpreadConstraint": {
        1: _f("maxSkew", "int"), 2: _f("topologyKey"), 3: _f("whenUnsatisfiable"),
        4: _p("labelSelector", "LabelSelector"), 5: _p("minDomains", "int"),
        6: _p("nodeAffinityPolicy"), 7: _p("nodeTaintsPolicy"), 8: _r("matchLabelKeys"),
    },
    "HostAlias": {1: _f("ip"), 2: _r("hostnames")},
    "PodDNSConfig": {1: _r("nameservers"), 2: _r("searches"),
                     3: _r("options", "PodDNSConfigOption")},
    "PodDNSConfigOption": {1: _f("name"), 2: _p("value")},
    "PodReadinessGate": {1: _f("conditionType")},
    "PodOS": {1: _f("name")},
    "PodSchedulingGate": {1: _f("name")},
    "PodResourceClaim": {1: _f("name"), 3: _p("resourceClaimName"),
                         4: _p("resourceClaimTemplateName")},
    "Volume": {1: _f("name"), 2: _f("", "VolumeSource")},
    "VolumeSource": {
        1: _p("hostPath", "HostPathVolumeSource"), 2: _p("emptyDir", "EmptyDirVolumeSource"),
        6: _p("secret", "SecretVolumeSource"), 7: _p("nfs", "NFSVolumeSource"),
        10: _p("persistentVolumeClaim", "PersistentVolumeClaimVolumeSource"),
        16: _p("downwardAPI", "DownwardAPIVolumeSource"),
        19: _p("configMap", "ConfigMapVolumeSource"),
        26: _p("projected", "ProjectedVolumeSource"), 28: _p("csi", "CSIVolumeSource"),
        30: _p("image", "ImageVolumeSource"),
    },
    "HostPathVolumeSource": {1: _f("path"), 2: _p("type")},
    "EmptyDirVolumeSource": {1: _f("medium"), 2: _p("sizeLimit", "Quantity")},
    "SecretVolumeSource": {1: _f("secretName"), 2: _r("items", "KeyToPath"),
                           3: _p("defaultMode", "int"), 4: _p("optional", "bool")},
    "ConfigMapVolumeSource": {**_INLINE_REF, 2: _r("items", "KeyToPath"),
                              3: _p("defaultMode", "int"), 4: _p("optional", "bool")},
    "KeyToPath": {1: _f("key"), 2: _f("path"), 3: _p("mode", "int")},
    "NFSVolumeSource": {1: _f("server"), 2: _f("path"), 3: _f("readOnly", "bool")},
    "PersistentVolumeClaimVolumeSource": {1: _f("claimName"), 2: _f("readOnly", "bool")},
    "DownwardAPIVolumeSource": {1: _r("items", "DownwardAPIVolumeFile"),
                                2: _p("defaultMode", "int")},
    "DownwardAPIVolumeFile": {1: _f("path"), 2: _p("fieldRef", "ObjectFieldSelector"),
                              3: _p("resourceFieldRef", "ResourceFieldSelector"),
                              4: _p("mode", "int")},
    "ProjectedVolumeSource": {1: _r("sources", "VolumeProjection"), 2: _p("defaultMode", "int")},
    "VolumeProjection": {
        1: _p("secret", "SecretProjection"), 2: _p("downwardAPI", "DownwardAPIProjection"),
        3: _p("configMap", "ConfigMapProjection"),
        4: _p("serviceAccountToken", "ServiceAccountTokenProjection"),
    },
    "SecretProjection": {**_INLINE_REF, 2: _r("items", "KeyToPath"), 4: _p("optional", "bool")},
    "ConfigMapProjection": {**_INLINE_REF, 2: _r("items", "KeyToPath"),
                            4: _p("optional", "bool")},
    "DownwardAPIProjection": {1: _r("items", "DownwardAPIVolumeFile")},
    "ServiceAccountTokenProjection": {1: _f("audience"), 2: _p("expirationSeconds", "int"),
                                      3: _f("path")},
    "CSIVolumeSource": {1: _f("driver"), 2: _p("readOnly", "bool"), 3: _p("fsType"),
                        4: _f("volumeAttributes", "map:string"),
                        5: _p("nodePublishSecretRef", "LocalObjectReference")},
    "ImageVolumeSource": {1: _f("reference"), 2: _f("pullPolicy")},
}

_WORKLOADS: dict[str, dict[int, Field]] = {
    # k8s.io/api/apps/v1
    "Deployment": {**_OBJECT, 2: _f("spec", "DeploymentSpec")},
    "DeploymentSpec": {
        1: _p("replicas", "int"), 2: _p("selector", "LabelSelector"),
        3: _f("template", "PodTemplateSpec"), 4: _f("strategy", "DeploymentStrategy"),
        5: _f("minReadySeconds", "int"), 6: _p("revisionHistoryLimit", "int"),
        7: _f("paused", "bool"), 9: _p("progressDeadlineSeconds", "int"),
        10: _p("podReplacementPolicy"),
    },
    "DeploymentStrategy": {1: _f("type"), 2: _p("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {1: _p("maxUnavailable", "IntOrString"),
                                2: _p("maxSurge", "IntOrString")},
    "ReplicaSet": {**_OBJECT, 2: _f("spec", "ReplicaSetSpec")},
    "ReplicaSetSpec": {1: _p("replicas", "int"), 4: _f("minReadySeconds", "int"),
                       2: _p("selector", "LabelSelector"), 3: _f("template", "PodTemplateSpec")},
    "DaemonSet": {**_OBJECT, 2: _f("spec", "DaemonSetSpec")},
    "DaemonSetSpec": {
        1: _p("selector", "LabelSelector"), 2: _f("template", "PodTemplateSpec"),
        3: _f("updateStrategy", "DaemonSetUpdateStrategy"), 4: _f("minReadySeconds", "int"),
        6: _p("revisionHistoryLimit", "int"),
    },
    "DaemonSetUpdateStrategy": {1: _f("type"), 2: _p("rollingUpdate", "RollingUpdateDaemonSet")},
    "RollingUpdateDaemonSet": {1: _p("maxUnavailable", "IntOrString"),
                               2: _p("maxSurge", "IntOrString")},
    # k8s.io/api/policy/v1
    "PodDisruptionBudget": {**_OBJECT, 2: _f("spec", "PodDisruptionBudgetSpec")},
    "PodDisruptionBudgetSpec": {
        1: _p("minAvailable", "IntOrString"), 2: _p("selector", "LabelSelector"),
        3: _p("maxUnavailable", "IntOrString"), 4: _p("unhealthyPodEvictionPolicy"),
    },
}

_AUTH: dict[str, dict[int, Field]] = {
    # k8s.io/api/rbac/v1
    "Role": {**_OBJECT, 2: _r("rules", "PolicyRule")},
    "ClusterRole": {
        **_OBJECT, 2: _r("rules", "PolicyRule"), 3: _p("aggregationRule", "AggregationRule"),
    },
    "AggregationRule": {1: _r("clusterRoleSelectors", "LabelSelector")},
    "PolicyRule": {
        1: _r("verbs"), 2: _r("apiGroups"), 3: _r("resources"), 4: _r("resourceNames"),
        5: _r("nonResourceURLs"),
    },
    "RoleBinding": {**_OBJECT, 2: _r("subjects", "Subject"), 3: _f("roleRef", "RoleRef")},
    "RoleRef": {1: _f("apiGroup"), 2: _f("kind"), 3: _f("name")},
    "Subject": {1: _f("kind"), 2: _f("apiGroup"), 3: _f("name"), 4: _f("namespace")},
    # k8s.io/api/authentication/v1
    "TokenRequest": {**_OBJECT, 2: _f("spec", "TokenRequestSpec")},
    "TokenRequestSpec": {
        1: _r("audiences"), 3: _p("boundObjectRef", "BoundObjectReference"),
        4: _p("expirationSeconds", "int"),
    },
    "BoundObjectReference": {1: _f("kind"), 2: _f("apiVersion"), 3: _f("name"), 4: _f("uid")},
    "TokenReview": {**_OBJECT, 2: _f("spec", "TokenReviewSpec")},
    "TokenReviewSpec": {1: _f("token"), 2: _r("audiences")},
    "SelfSubjectReview": dict(_OBJECT),
    # k8s.io/api/authorization/v1
    "SelfSubjectAccessReview": {**_OBJECT, 2: _f("spec", "SelfSubjectAccessReviewSpec")},
    "SelfSubjectAccessReviewSpec": {
        1: _p("resourceAttributes", "ResourceAttributes"),
        2: _p("nonResourceAttributes", "NonResourceAttributes"),
    },
    "SubjectAccessReview": {**_OBJECT, 2: _f("spec", "SubjectAccessReviewSpec")},
    "SubjectAccessReviewSpec": {
        1: _p("resourceAttributes", "ResourceAttributes"),
        2: _p("nonResourceAttributes", "NonResourceAttributes"),
        3: _f("user"), 4: _r("groups"), 5: _f("extra", "map:ExtraValue"), 6: _f("uid"),
    },
    "ExtraValue": {1: _r("items")},
    "ResourceAttributes": {
        1: _f("namespace"), 2: _f("verb"), 3: _f("group"), 4: _f("version"), 5: _f("resource"),
        6: _f("subresource"), 7: _f("name"),
    },
    "NonResourceAttributes": {1: _f("path"), 2: _f("verb")},
    "SelfSubjectRulesReview": {**_OBJECT, 2: _f("spec", "SelfSubjectRulesReviewSpec")},
    "SelfSubjectRulesReviewSpec": {1: _f("namespace")},
}

MESSAGES: dict[str, dict[int, Field]] = {**_META, **_CORE, **_PODS, **_WORKLOADS, **_AUTH}
MESSAGES["ClusterRoleBinding"] = MESSAGES["RoleBinding"]
MESSAGES["LocalSubjectAccessReview"] = MESSAGES["SubjectAccessReview"]

KINDS: dict[tuple[str, str], str] = {
    **{("v1", k): k for k in ("ServiceAccount", "Service", "Namespace", "ConfigMap", "Secret",
                              "Endpoints")},
    **{("apps/v1", k): k for k in ("Deployment", "ReplicaSet", "DaemonSet")},
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
    ("authentication.k8s.io/v1", "TokenReview"): "TokenReview",
    ("authentication.k8s.io/v1", "SelfSubjectReview"): "SelfSubjectReview",
    **{("rbac.authorization.k8s.io/v1", k): k
       for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")},
    **{("authorization.k8s.io/v1", k): k
       for k in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview",
                 "SelfSubjectRulesReview")},
}
