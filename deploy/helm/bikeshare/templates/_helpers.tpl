{{/*
Expand the name of the chart.
*/}}
{{- define "bikeshare.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "bikeshare.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "bikeshare.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "bikeshare.labels" -}}
helm.sh/chart: {{ include "bikeshare.chart" . }}
{{ include "bikeshare.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "bikeshare.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bikeshare.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "bikeshare.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bikeshare.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret holding BIKE_MYSQL_URL and BIKE_REDIS_URL: secrets.existingSecret or the chart's own.
*/}}
{{- define "bikeshare.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "bikeshare.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The environment name of a service option: BIKE_ + the option in UPPER_SNAKE
(metricsPort -> BIKE_METRICS_PORT), as src/config/schema.ts names them.
*/}}
{{- define "bikeshare.envName" -}}
{{- printf "BIKE_%s" (snakecase .) | upper }}
{{- end }}

{{/*
An option's value as a ConfigMap string. Numbers go through toJson: values.yaml
numbers are float64 in Helm, and `quote` would print 2592000 as "2.592e+06".
*/}}
{{- define "bikeshare.envValue" -}}
{{- if kindIs "string" . }}{{ . | quote }}{{ else }}{{ . | toJson | quote }}{{ end }}
{{- end }}
