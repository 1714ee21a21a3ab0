{{/* The balancer daemon's objects (balancer-*.yaml): names, labels, the token Secret. */}}

{{/* Name of the DaemonSet, its ServiceAccount, Role, RoleBinding and headless Service. */}}
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

{{/* The Secret holding the API's bearer token (key `token`). */}}
{{- define "lbctl.balancer.tokenSecretName" -}}
{{- default (printf "%s-balancer-token" (include "lbctl.fullname" .)) .Values.balancer.token.existingSecret }}
{{- end }}

{{/* Where the controller reads the token (baremetal.balancers[].tokenFile). */}}
{{- define "lbctl.balancer.controllerTokenDir" -}}
/var/run/lbctl/balancer-token
{{- end }}

{{/* Where the daemon reads it (--token-file). */}}
{{- define "lbctl.balancer.daemonTokenDir" -}}
/var/run/lbctl/token
{{- end }}

{{/* The controller's config: .Values.config, plus balancer.instances appended to
baremetal.balancers (each with the mounted token file) when the balancer is enabled. */}}
{{- define "lbctl.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if and .Values.balancer.enabled .Values.balancer.instances }}
{{- $baremetal := get $config "baremetal" | default dict }}
{{- $balancers := get $baremetal "balancers" | default list }}
{{- $tokenFile := printf "%s/token" (include "lbctl.balancer.controllerTokenDir" .) }}
{{- range $i, $instance := .Values.balancer.instances }}
{{- $name := required (printf "balancer.instances[%d].name is required" $i) $instance.name }}
{{- $url := required (printf "balancer.instances[%d].url is required" $i) $instance.url }}
{{- $balancers = append $balancers (dict "name" $name "url" $url "tokenFile" $tokenFile) }}
{{- end }}
{{- $_ := set $baremetal "balancers" $balancers }}
{{- $_ := set $config "baremetal" $baremetal }}
{{- end }}
{{- toYaml $config }}
{{- end }}
