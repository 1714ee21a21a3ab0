{{/* The balancer daemon's objects (balancer-*.yaml): names, labels, Secrets, mount paths, the
instances' checks and the controller's baremetal.balancers entries. */}}

{{/* Name of the DaemonSet, its ServiceAccount and headless Service. */}}
{{- define "lbctl.balancer.fullname" -}}
{{- printf "%s-balancer" (include "lbctl.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every balancer object carries. app.kubernetes.io/name differs from the
controller's: the controller's Deployment, PodDisruptionBudget and metrics Service select
on name + instance alone (immutable), so balancer pods must not carry the controller's name. */}}
{{- define "lbctl.balancer.labels" -}}
helm.sh/chart: {{ include "lbctl.chart" . }}
{{ include "lbctl.balancer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: balancer
app.kubernetes.io/part-of: lbctl
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the balancer pods (never change them on upgrade). */}}
{{- define "lbctl.balancer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lbctl.name" . }}-balancer
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The Secret holding the API's bearer token (key `token`) and the heartbeat key. */}}
{{- define "lbctl.balancer.tokenSecretName" -}}
{{- default (printf "%s-balancer-token" (include "lbctl.fullname" .)) .Values.balancer.token.existingSecret }}
{{- end }}

{{/* The kubernetes.io/tls Secret of the daemons' API: tls.crt, tls.key, ca.crt. */}}
{{- define "lbctl.balancer.tlsSecretName" -}}
{{- default (printf "%s-balancer-tls" (include "lbctl.fullname" .)) .Values.balancer.tls.existingSecret }}
{{- end }}

{{/* The chart's own CA (ca.crt, ca.key) signing a generated serving certificate: never
mounted, read back on upgrade so the controller keeps trusting the daemons. */}}
{{- define "lbctl.balancer.caSecretName" -}}
{{- printf "%s-balancer-ca" (include "lbctl.fullname" .) }}
{{- end }}

{{/* Where the controller reads the token (baremetal.balancers[].tokenFile). */}}
{{- define "lbctl.balancer.controllerTokenDir" -}}
/var/run/lbctl/balancer-token
{{- end }}

{{/* Where the controller reads the CA bundle (baremetal.balancers[].caFile). */}}
{{- define "lbctl.balancer.controllerCaDir" -}}
/var/run/lbctl/balancer-ca
{{- end }}

{{/* Where the daemon reads it (--token-file). */}}
{{- define "lbctl.balancer.daemonTokenDir" -}}
/var/run/lbctl/token
{{- end }}

{{/* Where the daemon reads its certificate and key (--tls-cert, --tls-key). */}}
{{- define "lbctl.balancer.daemonTlsDir" -}}
/var/run/lbctl/balancer-tls
{{- end }}

{{/* The hosts of balancer.instances[].url, as a JSON list (fromJsonArray), after checking
every instance: a name, a url, and https:// exactly when balancer.tls.enabled. */}}
{{- define "lbctl.balancer.hosts" -}}
{{- $tls := .Values.balancer.tls.enabled }}
{{- $hosts := list }}
{{- range $i, $instance := .Values.balancer.instances }}
{{- $name := required (printf "balancer.instances[%d].name is required" $i) $instance.name }}
{{- $url := required (printf "balancer.instances[%d].url is required" $i) $instance.url }}
{{- $parsed := urlParse $url }}
{{- if and $tls (ne $parsed.scheme "https") }}
{{- fail (printf "balancer.instances[%d].url must be https:// with balancer.tls.enabled (the daemons serve HTTPS only), not %q" $i $url) }}
{{- end }}
{{- if and (not $tls) (ne $parsed.scheme "http") }}
{{- fail (printf "balancer.instances[%d].url must be http:// with balancer.tls.enabled false (the daemons serve plain HTTP), not %q" $i $url) }}
{{- end }}
{{- if not $parsed.hostname }}
{{- fail (printf "balancer.instances[%d].url has no host: %q" $i $url) }}
{{- end }}
{{- $hosts = append $hosts $parsed.hostname }}
{{- end }}
{{- $hosts | uniq | toJson }}
{{- end }}

{{/* The controller's config: .Values.config, plus balancer.instances appended to
baremetal.balancers (each with the mounted token file, and the mounted CA bundle with TLS)
when the balancer is enabled. */}}
{{- define "lbctl.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if and .Values.balancer.enabled .Values.balancer.instances }}
{{- $_ := include "lbctl.balancer.hosts" . }}
{{- $baremetal := get $config "baremetal" | default dict }}
{{- $balancers := get $baremetal "balancers" | default list }}
{{- $tokenFile := printf "%s/token" (include "lbctl.balancer.controllerTokenDir" .) }}
{{- $caFile := printf "%s/ca.crt" (include "lbctl.balancer.controllerCaDir" .) }}
{{- range .Values.balancer.instances }}
{{- $entry := dict "name" .name "url" .url "tokenFile" $tokenFile }}
{{- if $.Values.balancer.tls.enabled }}
{{- $_ := set $entry "caFile" $caFile }}
{{- end }}
{{- $balancers = append $balancers $entry }}
{{- end }}
{{- $_ := set $baremetal "balancers" $balancers }}
{{- $_ := set $config "baremetal" $baremetal }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/* BGP mode (issue 18): on with balancer.bgp.enabled or a config.baremetal.bgp section (the
provider pushes it to every daemon, which then announces its VIPs through ExaBGP and binds
them on lo). "true" or "". */}}
{{- define "lbctl.balancer.bgp" -}}
{{- if and .Values.balancer.enabled (or .Values.balancer.bgp.enabled (dig "baremetal" "bgp" nil .Values.config)) }}true{{ end }}
{{- end }}

{{/* L2 announcements (ARP/NDP, heartbeats between the daemons). "true" or "". */}}
{{- define "lbctl.balancer.l2" -}}
{{- if and .Values.balancer.enabled .Values.balancer.l2.enabled }}true{{ end }}
{{- end }}

{{/* Where the daemon reads the BGP TCP-MD5 password(s): the passwordFile of the peers. */}}
{{- define "lbctl.balancer.bgpPasswordDir" -}}
/var/run/lbctl/bgp-password
{{- end }}

{{/* Where the daemon reads the L2 heartbeats' HMAC key (--heartbeat-key-file). */}}
{{- define "lbctl.balancer.heartbeatDir" -}}
/var/run/lbctl/heartbeat
{{- end }}

{{/* The Secret and key holding the heartbeat key: balancer.l2.heartbeatKey.existingSecret, or
the token Secret (generated or balancer.token.existingSecret), key heartbeat-key. */}}
{{- define "lbctl.balancer.heartbeatSecretName" -}}
{{- default (include "lbctl.balancer.tokenSecretName" .) .Values.balancer.l2.heartbeatKey.existingSecret }}
{{- end }}

{{/* Checks of the BGP wiring that only the rendered whole can see: every passwordFile of
config.baremetal.bgp.peers lies in the mounted password Secret. */}}
{{- define "lbctl.balancer.bgpChecks" -}}
{{- $dir := include "lbctl.balancer.bgpPasswordDir" . }}
{{- $secret := .Values.balancer.bgp.passwordSecret }}
{{- range $i, $peer := (dig "baremetal" "bgp" "peers" list .Values.config) }}
{{- $file := "" }}
{{- if kindIs "map" $peer }}{{ $file = get $peer "passwordFile" }}{{ end }}
{{- if $file }}
{{- if not $secret.name }}
{{- fail (printf "config.baremetal.bgp.peers[%d].passwordFile %q: set balancer.bgp.passwordSecret.name (a Secret with the TCP-MD5 password), which the chart mounts at %s in the balancer daemons" $i $file $dir) }}
{{- end }}
{{- $want := "" }}
{{- if $secret.key }}{{ $want = printf "%s/%s" $dir $secret.key }}{{ end }}
{{- if and $want (ne $file $want) }}
{{- fail (printf "config.baremetal.bgp.peers[%d].passwordFile %q: the chart mounts key %q of Secret %s at %s (or set balancer.bgp.passwordSecret.key to \"\" to mount every key of it under %s/)" $i $file $secret.key $secret.name $want $dir) }}
{{- end }}
{{- if and (not $want) (not (hasPrefix (printf "%s/" $dir) $file)) }}
{{- fail (printf "config.baremetal.bgp.peers[%d].passwordFile %q: the chart mounts every key of Secret %s under %s/" $i $file $secret.name $dir) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Checks of the L2 wiring (for a render that skips the schema too). */}}
{{- define "lbctl.balancer.l2Checks" -}}
{{- $l2 := .Values.balancer.l2 }}
{{- if not $l2.interface }}
{{- fail "balancer.l2.interface is required with balancer.l2.enabled (the LB nodes' interface on the VIPs' segment, e.g. eth0)" }}
{{- end }}
{{- if not $l2.peers }}
{{- fail "balancer.l2.peers is required with balancer.l2.enabled: every LB node as {name: NODE_NAME, address: NODE_IP} (this one included; each daemon skips its own name). The daemons do not discover each other, and a daemon that hears no peer announces every VIP itself" }}
{{- end }}
{{- range $i, $peer := $l2.peers }}
{{- if or (not $peer.name) (not $peer.address) }}
{{- fail (printf "balancer.l2.peers[%d] needs a name (the node's name) and an address (its IP)" $i) }}
{{- end }}
{{- end }}
{{- end }}
