"""The Service annotations the AWS provider reads, and the values they may take.

The keys are upstream's (kubernetes/cloud-provider-aws and the AWS Load Balancer Controller), so
Services written for either keep their meaning; `annotations` parses them, `desired` and
`firewall` read the parsed options, and the tests name the same constants.
"""

from __future__ import annotations

PREFIX = "service.beta.kubernetes.io/"
ANNOTATION_PREFIXES = ("service.beta.kubernetes.io/aws-load-balancer-",)

TYPE = PREFIX + "aws-load-balancer-type"
INTERNAL = PREFIX + "aws-load-balancer-internal"
SCHEME = PREFIX + "aws-load-balancer-scheme"
TARGET_TYPE = PREFIX + "aws-load-balancer-nlb-target-type"
SUBNETS = PREFIX + "aws-load-balancer-subnets"
EIP_ALLOCATIONS = PREFIX + "aws-load-balancer-eip-allocations"
PRIVATE_IPV4_ADDRESSES = PREFIX + "aws-load-balancer-private-ipv4-addresses"
HC_PROTOCOL = PREFIX + "aws-load-balancer-healthcheck-protocol"
HC_PORT = PREFIX + "aws-load-balancer-healthcheck-port"
HC_PATH = PREFIX + "aws-load-balancer-healthcheck-path"
HC_INTERVAL = PREFIX + "aws-load-balancer-healthcheck-interval"
HC_TIMEOUT = PREFIX + "aws-load-balancer-healthcheck-timeout"
HC_HEALTHY_THRESHOLD = PREFIX + "aws-load-balancer-healthcheck-healthy-threshold"
HC_UNHEALTHY_THRESHOLD = PREFIX + "aws-load-balancer-healthcheck-unhealthy-threshold"
PROXY_PROTOCOL = PREFIX + "aws-load-balancer-proxy-protocol"
CROSS_ZONE = PREFIX + "aws-load-balancer-cross-zone-load-balancing-enabled"
TARGET_GROUP_ATTRIBUTES = PREFIX + "aws-load-balancer-target-group-attributes"
ADDITIONAL_TAGS = PREFIX + "aws-load-balancer-additional-resource-tags"
TARGET_NODE_LABELS = PREFIX + "aws-load-balancer-target-node-labels"
IP_ADDRESS_TYPE = PREFIX + "aws-load-balancer-ip-address-type"
SSL_CERT = PREFIX + "aws-load-balancer-ssl-cert"
SSL_PORTS = PREFIX + "aws-load-balancer-ssl-ports"
BACKEND_PROTOCOL = PREFIX + "aws-load-balancer-backend-protocol"
SECURITY_GROUPS = PREFIX + "aws-load-balancer-security-groups"
MANAGE_BACKEND_RULES = PREFIX + "aws-load-balancer-manage-backend-security-group-rules"
TLS_ANNOTATIONS = (SSL_CERT, SSL_PORTS, BACKEND_PROTOCOL)

LOAD_BALANCER_TYPES = ("nlb", "external")
SCHEMES = ("internet-facing", "internal")
TARGET_TYPES = ("instance", "ip")
HC_PROTOCOLS = ("TCP", "HTTP", "HTTPS")
IP_ADDRESS_TYPES = ("ipv4", "dualstack")
TRAFFIC_PORT = "traffic-port"
PRESERVE_CLIENT_IP = "preserve_client_ip.enabled"
DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"
PROXY_PROTOCOL_V2 = "proxy_protocol_v2.enabled"
TARGET_GROUP_ATTRIBUTE_KEYS = (PRESERVE_CLIENT_IP, DEREGISTRATION_DELAY, PROXY_PROTOCOL_V2)
MAX_HC_PATH = 1024
MAX_SUBNET_NAME = 256
MAX_LB_SECURITY_GROUPS = 5
"""AWS's limit of security groups on one load balancer."""
LEGACY_INTERNAL = "0.0.0.0/0"
"""The in-tree controller's old spelling of `aws-load-balancer-internal: "true"`."""
