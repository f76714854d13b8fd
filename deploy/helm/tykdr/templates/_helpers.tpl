{{- define "tykdr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tykdr.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tykdr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tykdr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tykdr.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tykdr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "tykdr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tykdr.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tykdr.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where the chart mounts things (the config's paths point here). */}}
{{- define "tykdr.paths" -}}
config: /etc/tykdr/tykdr.yaml
identityDir: /etc/tykdr/identity
signingDir: /etc/tykdr/signing
work: /var/lib/tykdr
{{- end -}}

{{/*
tykdr.yaml: the user's config with the settings the chart owns put in. A deep copy, so .Values stays as given.
*/}}
{{- define "tykdr.config" -}}
{{- $p := include "tykdr.paths" . | fromYaml -}}
{{- $c := deepCopy (.Values.config | default dict) -}}
{{- $restore := get $c "restore" | default dict -}}
{{- $_ := set $restore "stagingDir" (printf "%s/staging" $p.work) -}}
{{- $_ := set $restore "reportDir" (printf "%s/reports" $p.work) -}}
{{- $_ := set $c "restore" $restore -}}
{{- $health := get $c "health" | default dict -}}
{{- if eq .Values.mode "daemon" -}}
{{- $_ := set $health "listen" (printf "0.0.0.0:%v" .Values.health.port) -}}
{{- end -}}
{{- if .Values.health.tokenSecret.name -}}
{{- $_ := set $health "token" "${TYKDR_HEALTH_TOKEN}" -}}
{{- end -}}
{{- if $health -}}
{{- $_ := set $c "health" $health -}}
{{- end -}}
{{- if .Values.identity.secretName -}}
{{- $enc := get $c "encryption" | default dict -}}
{{- $_ := set $enc "identityFile" (printf "%s/%s" $p.identityDir .Values.identity.key) -}}
{{- $_ := set $c "encryption" $enc -}}
{{- end -}}
{{- if .Values.signingKey.secretName -}}
{{- $sig := get $c "signing" | default dict -}}
{{- $_ := set $sig "keyFile" (printf "%s/%s" $p.signingDir .Values.signingKey.key) -}}
{{- $_ := set $c "signing" $sig -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{/* Checks that no secret is inlined where the chart expects a reference. */}}
{{- define "tykdr.validate" -}}
{{- if not (has .Values.mode (list "cronjobs" "daemon")) -}}
{{- fail (printf "mode %q: use cronjobs or daemon" (toString .Values.mode)) -}}
{{- end -}}
{{- range .Values.secretEnv -}}
{{- if or (not .name) (not .secretName) (not .key) -}}
{{- fail (printf "secretEnv entry %v: each needs name, secretName and key (a reference to an existing Secret; never a value)" (toJson .)) -}}
{{- end -}}
{{- if hasKey . "value" -}}
{{- fail (printf "secretEnv %s: has a value; give secretName and key of an existing Secret instead" .name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Duration ("90s", "30m", "2h", "35d", "1w") to seconds. */}}
{{- define "tykdr.seconds" -}}
{{- $d := toString . -}}
{{- $n := regexFind "^[0-9]+" $d -}}
{{- $u := trimPrefix $n $d -}}
{{- $m := dict "s" 1 "m" 60 "h" 3600 "d" 86400 "w" 604800 -}}
{{- if or (not $n) (not (hasKey $m $u)) -}}
{{- fail (printf "duration %q: write a whole number and one of s, m, h, d, w (e.g. 30m, 35d)" $d) -}}
{{- end -}}
{{- mul (atoi $n) (get $m $u) -}}
{{- end -}}

{{/* The pod's env: plain values, then secrets by reference only. */}}
{{- define "tykdr.env" -}}
- name: TYKDR_CONFIG
  value: {{ (include "tykdr.paths" . | fromYaml).config }}
- name: TMPDIR
  value: /tmp
{{- range $k, $v := .Values.env }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- range .Values.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end }}
{{- if .Values.health.tokenSecret.name }}
- name: TYKDR_HEALTH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.health.tokenSecret.name }}
      key: {{ .Values.health.tokenSecret.key }}
{{- end }}
{{- end -}}

{{- define "tykdr.volumeMounts" -}}
{{- $p := include "tykdr.paths" . | fromYaml -}}
- name: config
  mountPath: {{ $p.config }}
  subPath: tykdr.yaml
  readOnly: true
- name: work
  mountPath: {{ $p.work }}
- name: tmp
  mountPath: /tmp
{{- if .Values.identity.secretName }}
- name: identity
  mountPath: {{ $p.identityDir }}
  readOnly: true
{{- end }}
{{- if .Values.signingKey.secretName }}
- name: signing
  mountPath: {{ $p.signingDir }}
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "tykdr.volumes" -}}
- name: config
  configMap:
    name: {{ include "tykdr.fullname" . }}
- name: work
  emptyDir:
    sizeLimit: {{ .Values.work.sizeLimit }}
    {{- with .Values.work.medium }}
    medium: {{ . }}
    {{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- if .Values.identity.secretName }}
- name: identity
  secret:
    secretName: {{ .Values.identity.secretName }}
    defaultMode: 0440
    items:
      - key: {{ .Values.identity.key }}
        path: {{ .Values.identity.key }}
{{- end }}
{{- if .Values.signingKey.secretName }}
- name: signing
  secret:
    secretName: {{ .Values.signingKey.secretName }}
    defaultMode: 0440
    items:
      - key: {{ .Values.signingKey.key }}
        path: {{ .Values.signingKey.key }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by CronJob pods and daemon pods. */}}
{{- define "tykdr.podCommon" -}}
serviceAccountName: {{ include "tykdr.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
