{{/*
The alert rules, as `groups:`. Daemon mode uses tykdr's own metrics (docs/DAEMON.md); cronjobs mode uses
kube-state-metrics' CronJob metrics under the same alert names. deploy/prometheus/rules.yaml is this output
for a daemon scraped as job="tykdr" (a VM install); a test keeps the two equal.
*/}}

{{/* TIME-SERIES plan thresholds: "(time() - max by (plan) (METRIC{SEL,plan=...}) > N) or ..." */}}
{{- define "tykdr.planAge" -}}
{{- $metric := index . 0 -}}{{- $sel := index . 1 -}}{{- $limits := index . 2 -}}
{{- $named := without (keys $limits | sortAlpha) "default" -}}
{{- $parts := list -}}
{{- range $named -}}
{{- $parts = append $parts (printf "(time() - max by (plan) (%s{%s, plan=%q}) > %s)" $metric $sel . (include "tykdr.seconds" (index $limits .))) -}}
{{- end -}}
{{- if hasKey $limits "default" -}}
{{- $f := $sel -}}
{{- if $named }}{{ $f = printf "%s, plan!~%q" $sel (join "|" $named) }}{{ end -}}
{{- $parts = append $parts (printf "(time() - max by (plan) (%s{%s}) > %s)" $metric $f (include "tykdr.seconds" $limits.default)) -}}
{{- end -}}
{{- join "\nor\n" $parts -}}
{{- end -}}

{{- define "tykdr.ruleGroups" -}}
{{- $r := .Values.prometheusRule -}}
groups:
{{- if eq .Values.mode "daemon" }}
{{- $sel := $r.selector | default (printf "namespace=%q, job=%q" .Release.Namespace (include "tykdr.fullname" .)) }}
  - name: tykdr
    rules:
      - alert: TykdrRPOBreached
        expr: |
          (time() - max by (component) (tykdr_backup_last_success_timestamp_seconds{ {{- $sel -}} }) > max by (component) (tykdr_backup_rpo_seconds{ {{- $sel -}} }))
          or
          (max by (component) (tykdr_backup_health{ {{- $sel -}} }) == 2 unless on (component) tykdr_backup_last_success_timestamp_seconds{ {{- $sel -}} })
        for: {{ $r.rpoBreachedFor }}
        labels:
          severity: critical
        annotations:
          summary: {{`'Tyk backups of {{ $labels.component }} are older than their RPO'`}}
          description: {{`'The newest complete backup of component {{ $labels.component }} is older than the RPO of its tier (or there is none since the daemon started). Check the daemon logs for "backup failed" and /hello.'`}}
      - alert: TykdrBackupFailing
        expr: |
          max by (component) (tykdr_backup_health{ {{- $sel -}} }) == 2
          and on (component)
          sum by (component) (increase(tykdr_backup_failures_total{ {{- $sel -}} }[1h])) > 0
        for: {{ $r.backupFailingFor }}
        labels:
          severity: critical
        annotations:
          summary: {{`'Backups of {{ $labels.component }} are failing'`}}
          description: {{`'The last backup attempt of component {{ $labels.component }} failed. The leader logs "backup failed" with the reason and the fix, and sends backup_failed to webhooks.'`}}
      - alert: TykdrDrillFailed
        expr: |
          min by (plan) (
            tykdr_drill_last_success{ {{- $sel -}} }
            and
            (tykdr_drill_last_timestamp_seconds{ {{- $sel -}} } == on (plan) group_left () max by (plan) (tykdr_drill_last_timestamp_seconds{ {{- $sel -}} }))
          ) == 0
          or
          min by (plan) (tykdr_drill_last_success{ {{- $sel -}} } unless tykdr_drill_last_timestamp_seconds{ {{- $sel -}} }) == 0
        labels:
          severity: critical
        annotations:
          summary: {{`'The last DR drill of plan {{ $labels.plan }} failed'`}}
          description: {{`'The newest drill of restore plan {{ $labels.plan }} failed or could not run: a restore from the latest snapshot may not work. Its report is stored next to the snapshot (tykdr drills).'`}}
      - alert: TykdrDrillOverdue
        expr: |
          {{- include "tykdr.planAge" (list "tykdr_drill_last_timestamp_seconds" $sel $r.drillOverdue) | nindent 10 }}
        labels:
          severity: warning
        annotations:
          summary: {{`'No DR drill of plan {{ $labels.plan }} ran on schedule'`}}
          description: {{`'The newest drill of plan {{ $labels.plan }} finished {{ $value | humanizeDuration }} ago, longer than the drill policy allows. Check schedule.drills and the daemon logs.'`}}
      - alert: TykdrEvidenceStale
        expr: |
          {{- include "tykdr.planAge" (list "tykdr_drill_last_pass_timestamp_seconds" $sel $r.evidenceMaxAge) | nindent 10 }}
        labels:
          severity: warning
        annotations:
          summary: {{`'Restore evidence of plan {{ $labels.plan }} is older than policy'`}}
          description: {{`'The newest passing drill of plan {{ $labels.plan }} is {{ $value | humanizeDuration }} old: older than the evidence policy. Run tykdr drill --plan {{ $labels.plan }} and fix what fails.'`}}
      {{- if .Values.daemon.leader }}
      - alert: TykdrNoLeader
        expr: max(tykdr_leader{ {{- $sel -}} }) == 0
        for: {{ $r.noLeaderFor }}
        labels:
          severity: critical
        annotations:
          summary: 'No tykdr daemon is leader: no backup runs'
          description: 'Every tykdr daemon is a follower. The leader lock lives in Redis (leader.* or the first redis component): check that it is reachable from the daemons.'
      {{- end }}
      - alert: TykdrDaemonAbsent
        expr: absent(tykdr_build_info{ {{- $sel -}} })
        for: {{ $r.daemonAbsentFor }}
        labels:
          severity: critical
        annotations:
          summary: 'No tykdr daemon is scraped'
          description: 'Prometheus finds no tykdr daemon: no backup alert can fire. Check the pods (or the service) and the scrape configuration.'
{{- else }}
{{- $ns := .Release.Namespace }}
  - name: tykdr-cronjobs
    rules:
    {{- range $s := .Values.schedules }}
    {{- $cj := printf "namespace=%q, cronjob=%q" $ns (printf "%s-%s" (include "tykdr.fullname" $) $s.name) }}
    {{- $failing := get (dict "backup" "TykdrBackupFailing" "drill" "TykdrDrillFailed" "verify" "TykdrVerifyFailing" "prune" "TykdrPruneFailing") $s.job }}
      - alert: {{ $failing }}
        expr: |
          (kube_cronjob_status_last_schedule_time{ {{- $cj -}} } > kube_cronjob_status_last_successful_time{ {{- $cj -}} })
          or
          (kube_cronjob_status_last_schedule_time{ {{- $cj -}} } unless kube_cronjob_status_last_successful_time{ {{- $cj -}} })
        for: {{ $r.cronJobFailingFor }}
        labels:
          severity: critical
          schedule: {{ $s.name }}
        annotations:
          summary: {{ printf "'The last %s run of schedule %s did not succeed'" $s.job $s.name }}
          description: {{`'The newest Job of CronJob {{ $labels.cronjob }} has not succeeded: kubectl logs job/<its newest job> shows tykdr''s error and fix.'`}}
    {{- if eq $s.job "drill" }}
    {{- $plan := default "full" $s.plan }}
    {{- $overdue := (hasKey $r.drillOverdue $plan) | ternary (index $r.drillOverdue $plan) $r.drillOverdue.default }}
    {{- $evidence := (hasKey $r.evidenceMaxAge $plan) | ternary (index $r.evidenceMaxAge $plan) $r.evidenceMaxAge.default }}
    {{- if $overdue }}
      - alert: TykdrDrillOverdue
        expr: time() - kube_cronjob_status_last_schedule_time{ {{- $cj -}} } > {{ include "tykdr.seconds" $overdue }}
        labels:
          severity: warning
          schedule: {{ $s.name }}
          plan: {{ $plan }}
        annotations:
          summary: {{ printf "'No DR drill of plan %s ran on schedule'" $plan }}
          description: {{`'CronJob {{ $labels.cronjob }} last ran {{ $value | humanizeDuration }} ago, longer than the drill policy allows.'`}}
    {{- end }}
    {{- if $evidence }}
      - alert: TykdrEvidenceStale
        expr: |
          (time() - kube_cronjob_status_last_successful_time{ {{- $cj -}} } > {{ include "tykdr.seconds" $evidence }})
          or
          (time() - kube_cronjob_created{ {{- $cj -}} } > {{ include "tykdr.seconds" $evidence }} unless kube_cronjob_status_last_successful_time{ {{- $cj -}} })
        labels:
          severity: warning
          schedule: {{ $s.name }}
          plan: {{ $plan }}
        annotations:
          summary: {{ printf "'Restore evidence of plan %s is older than policy'" $plan }}
          description: {{`'The newest passing drill of CronJob {{ $labels.cronjob }} is older than the evidence policy.'`}}
    {{- end }}
    {{- end }}
    {{- if and $s.maxAge (ne $s.job "drill") }}
    {{- $late := get (dict "backup" "TykdrRPOBreached" "verify" "TykdrVerifyOverdue" "prune" "TykdrPruneOverdue") $s.job }}
      - alert: {{ $late }}
        expr: |
          (time() - kube_cronjob_status_last_successful_time{ {{- $cj -}} } > {{ include "tykdr.seconds" $s.maxAge }})
          or
          (time() - kube_cronjob_created{ {{- $cj -}} } > {{ include "tykdr.seconds" $s.maxAge }} unless kube_cronjob_status_last_successful_time{ {{- $cj -}} })
        labels:
          severity: {{ eq $s.job "backup" | ternary "critical" "warning" }}
          schedule: {{ $s.name }}
        annotations:
          summary: {{ printf "'Schedule %s (%s) has not succeeded for %s'" $s.name $s.job (toString $s.maxAge) }}
          description: {{`'CronJob {{ $labels.cronjob }} last succeeded {{ $value | humanizeDuration }} ago.'`}}
    {{- end }}
    {{- end }}
{{- end }}
{{- end -}}
