{{/* lbctl's alerts, as YAML rule groups (prometheusrule.yaml renders them, leaving out
metrics.prometheusRule.disabledAlerts and adding alertLabels). Every expression names only
series lbctl exports (lbctl/controller/metrics.py, lbctl/balancer/metrics.py) or Prometheus's
own `up`: tests/deploy/test_observability.py parses each one and checks its names against a
running controller's and daemon's /metrics, and runs promtool's rule unit tests (each alert
fires when it should, none on healthy series). Every alert says what to check, in its
description.
The BGP and L2 alerts are rendered with every balancer: without BGP mode (or L2) their series
do not exist and they never fire. */}}
{{- define "lbctl.alertGroups" -}}
{{- $c := include "lbctl.monitoring.controllerSelector" . }}
{{- $b := include "lbctl.monitoring.balancerSelector" . }}
{{- $ns := .Release.Namespace }}
{{- $deploy := include "lbctl.fullname" . }}
{{- $wait := .Values.metrics.prometheusRule.withoutAddressFor }}
- name: lbctl-controller
  rules:
    - alert: LbctlControllerDown
      expr: sum by (job, namespace) (up{ {{- $c -}} }) == 0 or absent(up{ {{- $c -}} })
      for: 5m
      labels:
        severity: critical
      annotations:
        summary: No lbctl controller replica is up in {{ $ns }}
        description: |-
          Prometheus has scraped no healthy lbctl controller replica in {{ $ns }} for 5 minutes: no LoadBalancer Service gets an address, an update or a cleanup.
          What to check: `kubectl -n {{ $ns }} get deployment,pods -l app.kubernetes.io/name={{ include "lbctl.name" . }},app.kubernetes.io/instance={{ .Release.Name }}` (CrashLoopBackOff, Pending, ImagePullBackOff); `kubectl -n {{ $ns }} logs deployment/{{ $deploy }}` (a config refused at start, the API server unreachable, provider credentials missing); if the pods run, the target's error on Prometheus's Targets page (ServiceMonitor labels, the metrics Service).
    - alert: LbctlNoLeader
      expr: sum by (job, namespace) (lbctl_leader{ {{- $c -}} }) < 1
      for: 5m
      labels:
        severity: critical
      annotations:
        summary: No lbctl controller replica leads in {{ $ns }}
        description: |-
          Controller replicas are up but none has held the Lease lbctl-controller for 5 minutes: no Service is reconciled.
          What to check: `kubectl -n {{ $ns }} get lease lbctl-controller -o yaml` (holderIdentity, renewTime); the replicas' logs for leader election errors (RBAC on coordination.k8s.io leases, API server timeouts); that leaderElection.enabled matches the deployment.
    - alert: LbctlMultipleLeaders
      expr: sum by (job, namespace) (lbctl_leader{ {{- $c -}} }) > 1
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: '{{`{{ $value }}`}} lbctl controller replicas lead at once in {{ $ns }}'
        description: |-
          More than one replica has reported lbctl_leader 1 for 5 minutes: they reconcile the same Services concurrently.
          What to check: `kubectl -n {{ $ns }} get lease lbctl-controller -o yaml` against each replica's logs; the nodes' clocks (lease renewals compare timestamps); the replicas' API server connectivity (a replica that cannot renew must stop leading).
    - alert: LbctlSyncErrors
      expr: sum by (job, namespace, reason) (rate(lbctl_sync_errors_total{ {{- $c -}} ,reason=~"backoff|api_.*",reason!~"api_(404|409)"}[10m])) > 0
      for: 15m
      labels:
        severity: warning
      annotations:
        summary: lbctl syncs keep failing in {{ $ns }} (reason {{`{{ $labels.reason }}`}})
        description: |-
          Syncs of LoadBalancer Services have failed and been retried for 15 minutes ({{`{{ $value | humanize }}`}}/s; reason backoff: the provider or the network failed, api_NNN: the Kubernetes API server answered NNN): the Services concerned keep a stale balancer or none. Refusals of a Service's own bad input are not counted here (they do not retry; LbctlServicesWithoutAddress covers a Service left without an address).
          What to check: `lbctl status -A` (the WARNING column has the last error of each Service that is not ready); `kubectl get events -A --field-selector type=Warning | grep -i loadbalancer`; the dashboard's "Sync errors by reason" (the provider's error class: TransientError for throttling, 5xx and the network); the leading replica's logs. A provider failure points at the cloud account (quotas, the controller's IAM role or workload identity) or, with baremetal, at the balancer daemons; api_NNN at the Kubernetes API server.
    - alert: LbctlSyncsMostlyFailing
      expr: sum by (job, namespace) (rate(lbctl_syncs_total{ {{- $c -}} ,outcome="backoff"}[15m])) / sum by (job, namespace) (rate(lbctl_syncs_total{ {{- $c -}} }[15m])) > 0.5
      for: 15m
      labels:
        severity: critical
      annotations:
        summary: Most lbctl syncs fail in {{ $ns }}
        description: |-
          {{`{{ $value | humanizePercentage }}`}} of the syncs of the last 15 minutes failed and are retried with back-off: the provider or its API fails for Services across the board.
          What to check: the cloud provider's status and the controller's credentials (a revoked role, an expired secret, a changed endpoint in the ConfigMap); with baremetal, whether the balancer daemons answer (LbctlBalancerDown); the leading replica's logs; `lbctl status -A`.
    - alert: LbctlServicesWithoutAddress
      expr: max by (job, namespace) (lbctl_services_without_address{ {{- $c -}} }) > 0
      for: {{ $wait }}
      labels:
        severity: warning
      annotations:
        summary: '{{`{{ $value }}`}} LoadBalancer Service(s) without an address'
        description: |-
          LoadBalancer Services lbctl owns have had no address in status.loadBalancer.ingress for {{ $wait }}.
          What to check: `lbctl status -A` (ADDRESS <pending>; READY and WARNING say why) and `lbctl status -A -o wide` for the conditions' messages; `kubectl describe service NAME` for its Warning events: AllocationFailed (an IP pool exhausted, no pool for the Service's namespace or labels, a requested address outside the pools), SyncLoadBalancerFailed (a provider error), a bad annotation named by key. Pools: `lbctl config validate` on the ConfigMap's config.yaml.
    - alert: LbctlConfigReloadRefused
      expr: min by (job, namespace) (lbctl_config_last_reload_successful{ {{- $c -}} }) == 0
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: lbctl refused its new config in {{ $ns }}
        description: |-
          A controller replica refused the last change of its config file (ConfigMap {{ include "lbctl.configMapName" . }}) and keeps serving the last good config: the change has no effect.
          What to check: `kubectl -n {{ $ns }} describe configmap {{ include "lbctl.configMapName" . }}` (the Warning event InvalidConfig names the key); `lbctl config validate config.yaml` on the file; the replicas' logs ("config reload refused"). provider and clusterName changes always need a restart (`kubectl -n {{ $ns }} rollout restart deployment/{{ $deploy }}`).
{{- if .Values.balancer.enabled }}
- name: lbctl-balancer
  rules:
    - alert: LbctlBalancersAllDown
      expr: sum by (job, namespace) (up{ {{- $b -}} }) == 0 or absent(up{ {{- $b -}} })
      for: 5m
      labels:
        severity: critical
      annotations:
        summary: No lbctl balancer daemon is up in {{ $ns }}
        description: |-
          Prometheus has scraped no healthy balancer daemon for 5 minutes: bare-metal VIPs get no traffic.
          What to check: `kubectl -n {{ $ns }} get daemonset,pods -l app.kubernetes.io/name={{ include "lbctl.name" . }}-balancer -o wide` (DESIRED 0: balancer.nodeSelector matches no node, tolerations missing); the pods' logs and events; the target's error on Prometheus's Targets page (with TLS: the CA, the certificate's names, balancerServerName).
    - alert: LbctlBalancerDown
      expr: up{ {{- $b -}} } == 0
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: lbctl balancer daemon {{`{{ $labels.instance }}`}} is down
        description: |-
          The balancer daemon at {{`{{ $labels.instance }}`}} has not answered Prometheus for 5 minutes: the VIPs it serves on that node get no traffic through it.
          What to check: `kubectl -n {{ $ns }} get pods -l app.kubernetes.io/name={{ include "lbctl.name" . }}-balancer -o wide` and the pod's logs and events (the API port or a listener's port taken on the node, the state directory not writable by uid 65532); the node itself; with TLS, the scrape error on Prometheus's Targets page (an expired certificate, a name it does not carry).
    - alert: LbctlBalancerNoHealthyTarget
      expr: max by (job, namespace, instance, balancer, protocol, port) (lbctl_balancer_target_up{ {{- $b -}} }) == 0
      for: 5m
      labels:
        severity: critical
      annotations:
        summary: Balancer {{`{{ $labels.balancer }}`}} {{`{{ $labels.protocol }}`}}/{{`{{ $labels.port }}`}} has no healthy target on {{`{{ $labels.instance }}`}}
        description: |-
          Every target of this listener has failed the daemon's health checks for 5 minutes: its clients are refused (lbctl_balancer_refused_total{reason="no_healthy_target"}).
          What to check: `lbctl status -A` (TARGETS 0/N, the LoadBalancerDegraded message); the Service's pods (`kubectl get endpointslices -l kubernetes.io/service-name=NAME`: none ready?); with externalTrafficPolicy Local, whether any node runs a ready pod of the Service (healthCheckNodePort answers 503 on the others); whether the LB node reaches the nodes' NodePorts (firewalls, kube-proxy).
    - alert: LbctlBalancerDegraded
      expr: max by (job, namespace, instance) (lbctl_balancer_degraded{ {{- $b -}} }) > 0
      for: 10m
      labels:
        severity: warning
      annotations:
        summary: '{{`{{ $value }}`}} balancer(s) degraded on {{`{{ $labels.instance }}`}}'
        description: |-
          Balancers on this daemon have reported a problem for 10 minutes: a listener that cannot bind its VIP:port, an nftables balancer fallen back to userspace, a VIP withdrawn after an L2 conflict. The message is the LoadBalancerDegraded condition of each Service concerned.
          What to check: `lbctl status -A -o wide` (the Degraded message); the daemon's logs on that node; for a fallback, lbctl_balancer_nftables_available on that daemon (balancer.netAdminCapabilities); for a bind failure, what else listens on that port of the node.
    - alert: LbctlL2Conflict
      expr: max by (job, namespace, instance) (lbctl_l2_conflicted_vips{ {{- $b -}} }) > 0
      for: 1m
      labels:
        severity: critical
      annotations:
        summary: Another host claims {{`{{ $value }}`}} VIP(s) announced by {{`{{ $labels.instance }}`}}
        description: |-
          A foreign MAC answers ARP/NDP for VIPs this daemon owns, so it withdrew them: clients reach the other host or nothing.
          What to check: the daemon's logs name the VIP and the foreign MAC; find that MAC on the segment (the switch's MAC table, `ip neigh` on a neighbour); an address of an lbctl pool configured elsewhere (a static address, a DHCP range overlapping the pool, a second MetalLB or lbctl). Remove the duplicate: the daemon announces the VIP again once the conflict is quiet.
    - alert: LbctlL2PeersUnheard
      expr: max by (job, namespace, instance) (lbctl_l2_alive_instances{ {{- $b -}} }) < on (job, namespace) group_left () count by (job, namespace) (lbctl_l2_alive_instances{ {{- $b -}} })
      for: 2m
      labels:
        severity: warning
      annotations:
        summary: L2 daemon {{`{{ $labels.instance }}`}} hears fewer peers than are running
        description: |-
          This daemon hears {{`{{ $value }}`}} instance(s) (itself included) while more L2 daemons are scraped: heartbeats do not reach it, so it computes VIP owners from a partial view and may claim VIPs another node announces (then LbctlL2Conflict).
          What to check: balancer.l2.peers lists every LB node by its node name and its address on the segment (`kubectl get nodes -o wide`); UDP port {{ .Values.balancer.l2.heartbeatPort }} open between the LB nodes; the same heartbeat key on every node (lbctl_l2_rejected_heartbeats_total rising: a wrong key); the daemon's log line "L2 announcements on IF as NAME (peers: ...)".
    - alert: LbctlBgpSessionDown
      expr: max by (job, namespace, instance, peer) (lbctl_bgp_session_up{ {{- $b -}} }) == 0
      for: 1m
      labels:
        severity: warning
      annotations:
        summary: BGP session {{`{{ $labels.instance }}`}} -> {{`{{ $labels.peer }}`}} is down
        description: |-
          The balancer daemon at {{`{{ $labels.instance }}`}} has had no Established BGP session with peer {{`{{ $labels.peer }}`}} for a minute: that router no longer sends this node any VIP traffic (the other nodes' routes still carry it).
          What to check: `kubectl -n {{ $ns }} exec deploy/{{ $deploy }} -- lbctl balancer bgp --config /etc/lbctl/config.yaml` (each session's state and last error: a NOTIFICATION such as bad peer AS, or no answer at all); the router's side (`birdc show protocols all`, `vtysh -c "show bgp neighbors"`); peerASN/myASN and the TCP-MD5 password on both sides (balancer.bgp.passwordSecret); TCP port 179 between the node and the router; the daemon's logs ("BGP peer ...").
    - alert: LbctlBgpNothingAnnounced
      expr: sum by (job, namespace) (lbctl_bgp_announced_prefixes{ {{- $b -}} }) == 0 and on (job, namespace) sum by (job, namespace) (lbctl_bgp_vips{ {{- $b -}} }) > 0
      for: 2m
      labels:
        severity: critical
      annotations:
        summary: No balancer daemon announces any VIP over BGP in {{ $ns }}
        description: |-
          The daemons carry VIPs in BGP mode, yet not one prefix is announced to any router for 2 minutes: every BGP-served VIP is unreachable from outside the nodes' segment.
          What to check: LbctlBgpSessionDown (no session up anywhere: the routers, the password, the ASNs); LbctlBalancerNoHealthyTarget (VIPs withdrawn because no target is healthy); config.baremetal.bgp.advertisements (pools or peers that match nothing); `kubectl -n {{ $ns }} exec deploy/{{ $deploy }} -- lbctl balancer bgp --config /etc/lbctl/config.yaml`; `lbctl status -A -o wide` (the LoadBalancerDegraded message names why no daemon announces a VIP).
    - alert: LbctlBgpVipsNotAnnounced
      expr: max by (job, namespace, instance) (lbctl_bgp_vips{ {{- $b -}} ,announced="false"}) > 0
      for: 2m
      labels:
        severity: warning
      annotations:
        summary: '{{`{{ $value }}`}} VIP(s) not announced by {{`{{ $labels.instance }}`}}'
        description: |-
          This daemon serves VIPs in BGP mode that it has not announced for 2 minutes: routers send their traffic to the other nodes only (or nowhere, if none announces them).
          What to check: `kubectl -n {{ $ns }} exec deploy/{{ $deploy }} -- lbctl balancer bgp --config /etc/lbctl/config.yaml` (which hosts announce each VIP, and each one's reason: no healthy target, held down after a flap, bindError binding it on lo without NET_ADMIN); LbctlBalancerNoHealthyTarget; `lbctl status -A -o wide`.
    - alert: LbctlBalancerWorkersRestarting
      expr: increase(lbctl_balancer_worker_restarts_total{ {{- $b -}} }[15m]) > 2
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: Data plane workers keep restarting on {{`{{ $labels.instance }}`}}
        description: |-
          {{`{{ $value | humanize }}`}} data plane worker restarts in 15 minutes: each restart drops the connections that worker held.
          What to check: the daemon's logs for the worker's exit; the pod's memory against balancer.resources.limits.memory (an OOM kill shows in `kubectl describe pod`); lbctl_balancer_workers_alive on the dashboard.
    - alert: LbctlBalancerApiRefusing
      expr: increase(lbctl_balancer_api_refused_connections_total{ {{- $b -}} }[10m]) > 0
      for: 10m
      labels:
        severity: warning
      annotations:
        summary: The API of balancer daemon {{`{{ $labels.instance }}`}} refuses connections
        description: |-
          The daemon's API has answered connections at its cap with 503 for 10 minutes: the controller's calls are among those turned away, so changes reach this daemon late.
          What to check: who else connects to port {{ .Values.balancer.apiPort }} of that node (a scanner, a misconfigured client; lbctl_balancer_api_connections on the dashboard); the controller's logs for 503 answers from {{`{{ $labels.instance }}`}}.
{{- end }}
{{- end }}
