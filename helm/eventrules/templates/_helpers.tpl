{{/* Chart name, truncated to the 63 characters a label value may have. */}}
{{- define "eventrules.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources: <release>-eventrules unless the release already says it. */}}
{{- define "eventrules.fullname" -}}
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

{{- define "eventrules.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "eventrules.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eventrules.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "eventrules.labels" -}}
helm.sh/chart: {{ include "eventrules.chart" . }}
{{ include "eventrules.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eventrules
{{- end }}

{{- define "eventrules.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "eventrules.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "eventrules.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* True when the SASL password comes from a Secret (the chart's or an existing one). */}}
{{- define "eventrules.saslPasswordSet" -}}
{{- if or .Values.kafka.sasl.existingSecret .Values.kafka.sasl.password }}true{{ end }}
{{- end }}

{{- define "eventrules.webhookSecretsSet" -}}
{{- if or .Values.webhooks.existingSecret .Values.webhooks.secrets }}true{{ end }}
{{- end }}

{{/* True when the chart generates the Prometheus read token (and so writes the token list). */}}
{{- define "eventrules.scrapeToken" -}}
{{- if and .Values.http.scrapeToken.enabled (not .Values.http.existingSecret) }}true{{ end }}
{{- end }}

{{/* True when the chart writes EVENTRULES_HTTP_TOKENS into its own Secret. */}}
{{- define "eventrules.chartTokens" -}}
{{- if and (not .Values.http.existingSecret) (or .Values.http.tokens .Values.http.scrapeToken.enabled) }}true{{ end }}
{{- end }}

{{/* True when the chart must create its own Secret (a value was given inline or is generated:
the scheduler secret, unless an existing one is named, always is). */}}
{{- define "eventrules.createSecret" -}}
{{- if or (and .Values.kafka.sasl.password (not .Values.kafka.sasl.existingSecret)) (and .Values.webhooks.secrets (not .Values.webhooks.existingSecret)) (include "eventrules.chartTokens" .) (not .Values.security.schedulerSecret.existingSecret) }}true{{ end }}
{{- end }}

{{- define "eventrules.caMounted" -}}
{{- if or .Values.kafka.tls.caSecret .Values.kafka.tls.caConfigMap }}true{{ end }}
{{- end }}

{{- define "eventrules.caPath" -}}
/etc/eventrules/kafka-ca/{{ .Values.kafka.tls.caKey }}
{{- end }}

{{/*
The SASL password variable, from the existing Secret or the one named by $secretName (the chart's
Secret for the worker, a hook-time copy for the topics Job). Call with (dict "root" $ "secretName" x).
*/}}
{{- define "eventrules.saslPasswordEnv" -}}
{{- $root := .root }}
{{- if include "eventrules.saslPasswordSet" $root -}}
- name: EVENTRULES_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- if $root.Values.kafka.sasl.existingSecret }}
      name: {{ $root.Values.kafka.sasl.existingSecret }}
      key: {{ $root.Values.kafka.sasl.existingSecretPasswordKey }}
      {{- else }}
      name: {{ .secretName }}
      key: sasl-password
      {{- end }}
{{- end }}
{{- end }}

{{/* Kafka connection settings as plain variables (the hook Job runs before the ConfigMap exists).
Optional helpers below render nothing when off; callers wrap them in `with` so no blank line is left. */}}
{{- define "eventrules.kafkaSettings" -}}
EVENTRULES_BOOTSTRAP_SERVERS: {{ required "kafka.bootstrapServers is required" .Values.kafka.bootstrapServers | quote }}
EVENTRULES_TOPIC_PREFIX: {{ .Values.config.topicPrefix | quote }}
{{- with .Values.kafka.securityProtocol }}
EVENTRULES_SECURITY_PROTOCOL: {{ . | quote }}
{{- end }}
{{- with .Values.kafka.sasl.mechanism }}
EVENTRULES_SASL_MECHANISM: {{ . | quote }}
{{- end }}
{{- with .Values.kafka.sasl.username }}
EVENTRULES_SASL_USERNAME: {{ . | quote }}
{{- end }}
{{- if include "eventrules.caMounted" . }}
EVENTRULES_SSL_CA_LOCATION: {{ include "eventrules.caPath" . | quote }}
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret }}
EVENTRULES_SSL_CERTIFICATE_LOCATION: "/etc/eventrules/kafka-client/tls.crt"
EVENTRULES_SSL_KEY_LOCATION: "/etc/eventrules/kafka-client/tls.key"
{{- end }}
{{- end }}

{{/* The mTLS client key's password variable, when its Secret is named. */}}
{{- define "eventrules.sslKeyPasswordEnv" -}}
{{- if .Values.kafka.tls.clientKeyPasswordSecret -}}
- name: EVENTRULES_SSL_KEY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.tls.clientKeyPasswordSecret }}
      key: {{ .Values.kafka.tls.clientKeyPasswordKey }}
{{- end }}
{{- end }}

{{- define "eventrules.clientCertVolume" -}}
{{- if .Values.kafka.tls.clientCertSecret -}}
- name: kafka-client
  secret:
    secretName: {{ .Values.kafka.tls.clientCertSecret }}
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
{{- end }}
{{- end }}

{{- define "eventrules.clientCertVolumeMount" -}}
{{- if .Values.kafka.tls.clientCertSecret -}}
- name: kafka-client
  mountPath: /etc/eventrules/kafka-client
  readOnly: true
{{- end }}
{{- end }}

{{- define "eventrules.caVolume" -}}
{{- if include "eventrules.caMounted" . -}}
- name: kafka-ca
  {{- if .Values.kafka.tls.caSecret }}
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
    items:
      - key: {{ .Values.kafka.tls.caKey }}
        path: {{ .Values.kafka.tls.caKey }}
  {{- else }}
  configMap:
    name: {{ .Values.kafka.tls.caConfigMap }}
    items:
      - key: {{ .Values.kafka.tls.caKey }}
        path: {{ .Values.kafka.tls.caKey }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "eventrules.caVolumeMount" -}}
{{- if include "eventrules.caMounted" . -}}
- name: kafka-ca
  mountPath: /etc/eventrules/kafka-ca
  readOnly: true
{{- end }}
{{- end }}
