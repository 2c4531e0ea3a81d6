{{- define "crowsnest.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crowsnest.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
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

{{/* Fails rendering on settings that cannot work together. */}}
{{- define "crowsnest.validate" -}}
{{- if and (eq .Values.source "argocd-api") (not .Values.argocd.server) -}}
{{- fail "source=argocd-api needs argocd.server (argocd-server's host:port) and argocd.tokenSecret.name" -}}
{{- end -}}
{{- if and .Values.argocd.server (not .Values.argocd.tokenSecret.name) -}}
{{- fail "argocd.server needs argocd.tokenSecret.name: an existing Secret holding an Argo CD API token" -}}
{{- end -}}
{{- if and .Values.loki.username .Values.loki.bearerTokenSecret.name -}}
{{- fail "loki.username (basic auth) and loki.bearerTokenSecret are exclusive" -}}
{{- end -}}
{{- if and .Values.loki.username (not .Values.loki.passwordSecret.name) -}}
{{- fail "loki.username needs loki.passwordSecret.name" -}}
{{- end -}}
{{- if and .Values.web.config .Values.web.configSecret -}}
{{- fail "web.config and web.configSecret are exclusive" -}}
{{- end -}}
{{- if and .Values.rbac.namespaced (not .Values.watchNamespaces) -}}
{{- fail "rbac.namespaced needs watchNamespaces" -}}
{{- end -}}
{{- if and (eq .Values.source "argocd-api") (or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1)) -}}
{{- fail "leader election (replicaCount > 1) needs source=kubernetes" -}}
{{- end -}}
{{- end -}}
