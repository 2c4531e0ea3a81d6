{{- define "crowsnest.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crowsnest.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := .Values.nameOverride | default .Chart.Name -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "crowsnest.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "crowsnest.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "crowsnest.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crowsnest.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "crowsnest.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "crowsnest.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "crowsnest.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* Whether the Applications are split between shards: sharding.totalShards
> 1 (a StatefulSet of one pod per shard). */}}
{{- define "crowsnest.sharded" -}}
{{- if gt (int .Values.sharding.totalShards) 1 -}}true{{- end -}}
{{- end -}}

{{/* Whether leader election is on: asked for, or more than one replica. */}}
{{/* Whether crowsnest keeps a checkpoint ConfigMap (source=kubernetes). */}}
{{- define "crowsnest.checkpoint" -}}
{{- if and .Values.checkpoint.enabled (eq .Values.source "kubernetes") -}}true{{- end -}}
{{- end -}}

{{/* The checkpoint ConfigMaps' names, one per line: <fullname>-state, or
per shard <fullname>-state-<shard>-of-<total> (--checkpoint.configmap plus
the shard suffix crowsnest adds). */}}
{{- define "crowsnest.checkpointNames" -}}
{{- if include "crowsnest.sharded" . -}}
{{- $total := int .Values.sharding.totalShards -}}
{{- range $i := until $total }}
{{ include "crowsnest.fullname" $ }}-state-{{ $i }}-of-{{ $total }}
{{- end -}}
{{- else -}}
{{ include "crowsnest.fullname" . }}-state
{{- end -}}
{{- end -}}

{{- define "crowsnest.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* The web configuration file the chart writes (YAML; empty: none):
web.config, plus a tls_server_config for web.tlsSecret unless it has one. */}}
{{- define "crowsnest.webConfig" -}}
{{- $c := deepCopy (.Values.web.config | default dict) -}}
{{- if and .Values.web.tlsSecret (not (hasKey $c "tls_server_config")) -}}
{{- $_ := set $c "tls_server_config" (dict "cert_file" "/etc/crowsnest/tls/tls.crt" "key_file" "/etc/crowsnest/tls/tls.key") -}}
{{- end -}}
{{- if $c -}}
{{- toYaml $c -}}
{{- end -}}
{{- end -}}

{{/* http or https: how the probes, the ServiceMonitor and helm test reach
crowsnest. */}}
{{- define "crowsnest.webScheme" -}}
{{- if .Values.web.scheme -}}
{{- .Values.web.scheme -}}
{{- else if or .Values.web.tlsSecret (hasKey (.Values.web.config | default dict) "tls_server_config") -}}
https
{{- else -}}
http
{{- end -}}
{{- end -}}

{{/* A probe: the values' probe merged over an httpGet of path on the
metrics port, unless the values name another handler. */}}
{{- define "crowsnest.probe" -}}
{{- $p := deepCopy (.probe | default dict) -}}
{{- if not (or $p.exec $p.tcpSocket $p.grpc) -}}
{{- $p = merge $p (dict "httpGet" (dict "path" .path "port" "metrics" "scheme" (include "crowsnest.webScheme" .root | upper))) -}}
{{- end -}}
{{- toYaml $p -}}
{{- end -}}

{{/* Fails rendering on settings that cannot work together. */}}
{{- define "crowsnest.validate" -}}
{{- if and (eq .Values.source "argocd-api") (not .Values.argocd.server) -}}
{{- fail "source=argocd-api needs argocd.server (argocd-server's host:port) and argocd.tokenSecret.name" -}}
{{- end -}}
{{- if and .Values.argocd.server (not .Values.argocd.tokenSecret.name) -}}
{{- fail "argocd.server needs argocd.tokenSecret.name: an existing Secret holding an Argo CD API token" -}}
{{- end -}}
{{- if and .Values.argocd.ca.secret .Values.argocd.ca.configMap -}}
{{- fail "argocd.ca.secret and argocd.ca.configMap are exclusive" -}}
{{- end -}}
{{- if and (or .Values.argocd.ca.secret .Values.argocd.ca.configMap) (not .Values.argocd.server) -}}
{{- fail "argocd.ca needs argocd.server" -}}
{{- end -}}
{{- if and .Values.argocd.plaintext (or .Values.argocd.insecure .Values.argocd.ca.secret .Values.argocd.ca.configMap) -}}
{{- fail "argocd.plaintext (no TLS) and argocd.insecure or argocd.ca are exclusive" -}}
{{- end -}}
{{- if and .Values.loki.username .Values.loki.bearerTokenSecret.name -}}
{{- fail "loki.username (basic auth) and loki.bearerTokenSecret are exclusive" -}}
{{- end -}}
{{- if and .Values.loki.username (not .Values.loki.passwordSecret.name) -}}
{{- fail "loki.username needs loki.passwordSecret.name" -}}
{{- end -}}
{{- if and .Values.loki.passwordSecret.name (not .Values.loki.username) -}}
{{- fail "loki.passwordSecret needs loki.username" -}}
{{- end -}}
{{- if and (or .Values.loki.username .Values.loki.bearerTokenSecret.name .Values.loki.tenant) (not .Values.loki.url) -}}
{{- fail "loki.username, loki.bearerTokenSecret and loki.tenant need loki.url" -}}
{{- end -}}
{{- if and .Values.web.config .Values.web.configSecret -}}
{{- fail "web.config and web.configSecret are exclusive" -}}
{{- end -}}
{{- if and .Values.web.tlsSecret .Values.web.configSecret -}}
{{- fail "web.tlsSecret needs the chart's web.config, not web.configSecret: mount the certificate with extraVolumes instead" -}}
{{- end -}}
{{- if and .Values.caBundle.configMap .Values.caBundle.secret -}}
{{- fail "caBundle.configMap and caBundle.secret are exclusive" -}}
{{- end -}}
{{- if and (eq .Values.source "argocd-api") (include "crowsnest.leaderElection" .) -}}
{{- fail "leader election (leaderElection.enabled or replicaCount > 1) needs source=kubernetes" -}}
{{- end -}}
{{- if and (include "crowsnest.sharded" .) (gt (int .Values.replicaCount) 1) -}}
{{- fail "sharding.totalShards > 1 runs one pod per shard (a StatefulSet): replicaCount must be 1" -}}
{{- end -}}
{{- end -}}

{{/* Labels of the helm test Pod: the release's, under another name, so
that no selector of crowsnest's pods matches it. */}}
{{- define "crowsnest.testLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "crowsnest.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
The rules of a ClusterRole that reads the workload kinds crowsnest joins
(workloadKinds, --workloads.kinds): get, list and watch, nothing else. The
hub's ClusterRole and a spoke's (mode: spoke) share them.
*/}}
{{- define "crowsnest.workloadRules" -}}
{{- $kinds := list }}
{{- range splitList "," .Values.workloadKinds }}{{- with trim . | lower }}{{- $kinds = append $kinds . }}{{- end }}{{- end }}
  {{- $apps := list }}
  {{- range list "deployments" "statefulsets" "daemonsets" }}{{- if has . $kinds }}{{- $apps = append $apps . }}{{- end }}{{- end }}
  {{- with $apps }}
  - apiGroups: [apps]
    resources: [{{ join ", " . }}]
    verbs: [get, list, watch]
  {{- end }}
  {{- if has "jobs" $kinds }}
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [get, list, watch]
  {{- end }}
  {{- if has "rollouts" $kinds }}
  - apiGroups: [argoproj.io]
    resources: [rollouts]
    verbs: [get, list, watch]
  {{- end }}
  {{- if has "certificates" $kinds }}
  - apiGroups: [cert-manager.io]
    resources: [certificates]
    verbs: [get, list, watch]
  {{- end }}
{{- end }}

{{/*
The notes of mode: spoke: how the hub gets this cluster's token.
*/}}
{{- define "crowsnest.spokeNotes" -}}
This cluster is a spoke: no crowsnest runs here. The ServiceAccount
{{ .Release.Namespace }}/{{ include "crowsnest.serviceAccountName" . }} may only get, list and watch {{ .Values.workloadKinds }}.

In the hub, put its token in a Secret of Argo CD's cluster Secret format
(keys name, server, config) and list it in the hub release's clusterSecrets:

  TOKEN=$(kubectl -n {{ .Release.Namespace }} get secret {{ include "crowsnest.fullname" . }}-token -o jsonpath='{.data.token}' | base64 -d)
  kubectl --context HUB -n HUB_NAMESPACE create secret generic crowsnest-cluster-NAME \
    --from-literal=name=NAME --from-literal=server=https://THIS-API-SERVER \
    --from-literal=config="{\"bearerToken\":\"$TOKEN\",\"tlsClientConfig\":{\"caData\":\"...\"}}"

NAME must be the name Argo CD's own cluster Secret gives this cluster.
{{- end }}

{{/*
The scrape endpoint of a ServiceMonitor or a PodMonitor (the same fields):
serviceMonitor's settings. Indented by the caller.
*/}}
{{- define "crowsnest.scrapeEndpoint" -}}
port: metrics
interval: {{ .Values.serviceMonitor.interval }}
{{- with .Values.serviceMonitor.scrapeTimeout }}
scrapeTimeout: {{ . }}
{{- end }}
scheme: {{ .Values.serviceMonitor.scheme | default (include "crowsnest.webScheme" .) }}
{{- with .Values.serviceMonitor.tlsConfig }}
tlsConfig: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.serviceMonitor.basicAuth }}
basicAuth: {{- toYaml . | nindent 2 }}
{{- end }}
# crowsnest's series carry the app's own namespace label: with
# honorLabels it is kept, rather than renamed exported_namespace and
# replaced by the pod's (the rules, dashboards and alerts group by it).
honorLabels: {{ .Values.serviceMonitor.honorLabels }}
{{- if or (not .Values.serviceMonitor.jobLabel) .Values.serviceMonitor.relabelings }}
relabelings:
  {{- if not .Values.serviceMonitor.jobLabel }}
  # The alert rules match this job.
  - targetLabel: job
    replacement: {{ .Values.serviceMonitor.job }}
  {{- end }}
  {{- with .Values.serviceMonitor.relabelings }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- with .Values.serviceMonitor.metricRelabelings }}
metricRelabelings: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
