{{/* What the monitoring objects share (servicemonitor.yaml, prometheusrule.yaml,
dashboard-configmap.yaml): their labels, and the series selectors the alerts use. */}}

{{/* Labels of the PrometheusRule and the dashboard ConfigMap: the chart's, component
`monitoring` (they belong to neither the controller's pods nor the daemons). */}}
{{- define "lbctl.monitoring.labels" -}}
helm.sh/chart: {{ include "lbctl.chart" . }}
{{ include "lbctl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: monitoring
app.kubernetes.io/part-of: lbctl
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The controller's series as the chart's ServiceMonitor scrapes them: Prometheus Operator
names the job after the Service (the metrics Service). */}}
{{- define "lbctl.monitoring.controllerSelector" -}}
job="{{ include "lbctl.fullname" . }}-metrics",namespace="{{ .Release.Namespace }}"
{{- end }}

{{/* The balancer daemons' series (job: the headless Service). */}}
{{- define "lbctl.monitoring.balancerSelector" -}}
job="{{ include "lbctl.balancer.fullname" . }}",namespace="{{ .Release.Namespace }}"
{{- end }}

{{/* The name the daemons' certificate is verified against when Prometheus scrapes them:
metrics.serviceMonitor.balancerServerName, else the host of the first instance's url (every
daemon serves the one certificate, whose SANs cover every instance's host), else none (the
target's address, the node's). */}}
{{- define "lbctl.monitoring.balancerServerName" -}}
{{- if .Values.metrics.serviceMonitor.balancerServerName }}
{{- .Values.metrics.serviceMonitor.balancerServerName }}
{{- else if .Values.balancer.instances }}
{{- first (include "lbctl.balancer.hosts" . | fromJsonArray) }}
{{- end }}
{{- end }}
