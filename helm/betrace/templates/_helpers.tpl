{{/* Chart name, or nameOverride: the app.kubernetes.io/name label. */}}
{{- define "betrace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name shared by every resource (at most 63 characters). */}}
{{- define "betrace.fullname" -}}
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

{{/* Name of one component's resources: <fullname>-<component> (pass a dict: ctx, component). */}}
{{- define "betrace.componentName" -}}
{{- printf "%s-%s" (include "betrace.fullname" .ctx | trunc 50 | trimSuffix "-") .component }}
{{- end }}

{{/* chart label value: name-version. */}}
{{- define "betrace.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource (pass a dict: ctx, component): the selector's, then the chart's own,
which commonLabels may override (app.kubernetes.io/part-of, say), one key each.
*/}}
{{- define "betrace.labels" -}}
{{ include "betrace.selectorLabels" . }}
{{- $labels := dict "helm.sh/chart" (include "betrace.chart" .ctx) "app.kubernetes.io/version" .ctx.Chart.AppVersion "app.kubernetes.io/managed-by" .ctx.Release.Service "app.kubernetes.io/part-of" "betrace" }}
{{- include "betrace.checkLabels" (dict "labels" .ctx.Values.commonLabels "where" "commonLabels") }}
{{- /* set, not merge: merge takes an empty value for none, and an empty label is a label */}}
{{- range $key, $value := .ctx.Values.commonLabels }}{{ $_ := set $labels $key $value }}{{ end }}
{{ toYaml $labels }}
{{- end }}

{{/*
Labels of a Deployment's pods (pass a dict: ctx, component): the selector's, commonLabels and
the component's podLabels, which win over commonLabels. Neither the chart's version
(helm.sh/chart) nor the app's (app.kubernetes.io/version, which with a pinned image tag is not
even what the pod runs): a change of the pod template replaces the pods, and a new backend pod
starts with no violations, so a chart upgrade that changes nothing the pods run must leave
them as they are.
*/}}
{{- define "betrace.podLabels" -}}
{{ include "betrace.selectorLabels" . }}
{{- $pod := (index .ctx.Values .component).podLabels | default dict }}
{{- include "betrace.checkLabels" (dict "labels" $pod "where" (printf "%s.podLabels" .component)) }}
{{- include "betrace.checkLabels" (dict "labels" .ctx.Values.commonLabels "where" "commonLabels") }}
{{- $labels := dict "app.kubernetes.io/part-of" "betrace" }}
{{- range $key, $value := .ctx.Values.commonLabels }}{{ $_ := set $labels $key $value }}{{ end }}
{{- range $key, $value := $pod }}{{ $_ := set $labels $key $value }}{{ end }}
{{ toYaml $labels }}
{{- end }}

{{/*
Fails on a label that selects the chart's pods (pass a dict: labels, where): a second value
would make the pods' labels differ from their Deployment's selector.
*/}}
{{- define "betrace.checkLabels" -}}
{{- range $key, $_ := .labels }}
{{- if has $key (list "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/component") }}
{{- fail (printf "%s: %s is a label the chart's selectors use; remove it from %s" $.where $key $.where) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels that select one component's pods; never change them (selectors are immutable). */}}
{{- define "betrace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "betrace.name" .ctx | quote }}
app.kubernetes.io/instance: {{ .ctx.Release.Name | quote }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* ServiceAccount the pods run as. */}}
{{- define "betrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "betrace.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The site of this chart's release: <home>X.Y/, the folder docs.yml deploys tag vX.Y.Z to
(appVersion is the release's version, which releases.yaml requires). Not latest/: the pages of
a later release may describe values this chart does not have.
*/}}
{{- define "betrace.docs" -}}
{{- printf "%s%s/" .Chart.Home (regexReplaceAll "^([0-9]+\\.[0-9]+)\\..*$" .Chart.AppVersion "${1}") }}
{{- end }}

{{/* The Grafana app plugin id (releases.yaml plugin.id); the only unsigned plugin Grafana may load. */}}
{{- define "betrace.pluginId" -}}
betrace-app
{{- end }}

{{/* Reference of a BeTrace image (pass a dict: ctx, name, image): registry/name:tag[@digest], tag defaulting to appVersion. */}}
{{- define "betrace.image" -}}
{{- $tag := default .ctx.Chart.AppVersion .image.tag }}
{{- $ref := printf "%s/%s:%s" .ctx.Values.image.registry .name $tag }}
{{- if .image.digest }}{{ printf "%s@%s" $ref .image.digest }}{{ else }}{{ $ref }}{{ end }}
{{- end }}

{{/* Reference of a third-party image (pass the image values: repository, tag, digest). */}}
{{- define "betrace.externalImage" -}}
{{- $ref := printf "%s:%s" .repository .tag }}
{{- if .digest }}{{ printf "%s@%s" $ref .digest }}{{ else }}{{ $ref }}{{ end }}
{{- end }}

{{/* Image of the Grafana container: the grafana-plugin image, or stock Grafana plus the init container. */}}
{{- define "betrace.grafanaImage" -}}
{{- if eq .Values.grafana.plugin.source "image" }}
{{- include "betrace.image" (dict "ctx" . "name" "grafana-plugin" "image" .Values.grafana.plugin.pluginImage) }}
{{- else }}
{{- include "betrace.externalImage" .Values.grafana.image }}
{{- end }}
{{- end }}

{{/* Security context of every container: non-root, read-only root, no privilege, no capabilities. */}}
{{- define "betrace.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .runAsUser }}
runAsGroup: {{ .runAsUser }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Security context of every pod (pass the user id): fsGroup makes volumes writable by that user. */}}
{{- define "betrace.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* imagePullSecrets of a pod: image.pullSecrets, each a name or a {name: ...} object. */}}
{{- define "betrace.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ if kindIs "map" . }}{{ .name | quote }}{{ else }}{{ . | quote }}{{ end }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Name of the Secret that holds the backend's signature key. */}}
{{- define "betrace.signatureSecretName" -}}
{{- default (include "betrace.componentName" (dict "ctx" . "component" "backend")) .Values.backend.signatureKey.existingSecret }}
{{- end }}

{{/* Name of the Secret that holds the Grafana admin user and password. */}}
{{- define "betrace.adminSecretName" -}}
{{- default (include "betrace.componentName" (dict "ctx" . "component" "grafana-admin")) .Values.grafana.admin.existingSecret }}
{{- end }}

{{/* URL at which Grafana's server reaches the backend (jsonData.backendUrl): the app calls it
through its plugin proxy route, never from the browser. Default: the backend's Service. */}}
{{- define "betrace.backendUrl" -}}
{{- if .Values.grafana.plugin.backendUrl }}
{{- .Values.grafana.plugin.backendUrl }}
{{- else }}
{{- printf "http://%s.%s.svc:%d" (include "betrace.componentName" (dict "ctx" . "component" "backend")) .Release.Namespace (int .Values.backend.ports.http) }}
{{- end }}
{{- end }}

{{/* A random value kept across upgrades: the existing Secret's value when there is one (pass ctx, name, key, length). */}}
{{- define "betrace.keptRandom" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .name }}
{{- if and $existing (hasKey ($existing.data | default dict) .key) }}
{{- index $existing.data .key }}
{{- else }}
{{- randAlphaNum (int .length) | b64enc }}
{{- end }}
{{- end }}

{{/*
The environment the chart gives Grafana (a list of EnvVars). grafana.extraEnv comes after it and
may not name any of these: a later entry of the same name would win, so an extra
GF_AUTH_ANONYMOUS_ENABLED or GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS could undo the chart's
defaults.
*/}}
{{- define "betrace.grafanaEnv" -}}
{{- if eq .Values.grafana.admin.userKey .Values.grafana.admin.passwordKey }}
{{- fail (printf "grafana.admin.userKey and grafana.admin.passwordKey are both %s: Grafana would take the password for the user name" .Values.grafana.admin.userKey) }}
{{- end }}
- name: GF_SECURITY_ADMIN_USER
  valueFrom:
    secretKeyRef:
      name: {{ include "betrace.adminSecretName" . | quote }}
      key: {{ .Values.grafana.admin.userKey | quote }}
- name: GF_SECURITY_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "betrace.adminSecretName" . | quote }}
      key: {{ .Values.grafana.admin.passwordKey | quote }}
# The plugin is unsigned: allow exactly this id and nothing else.
- name: GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS
  value: {{ include "betrace.pluginId" . | quote }}
- name: GF_AUTH_ANONYMOUS_ENABLED
  value: "false"
- name: GF_USERS_ALLOW_SIGN_UP
  value: "false"
# Data on its own volume so that it never hides the plugins directory of the image.
- name: GF_PATHS_DATA
  value: /var/lib/grafana/data
- name: GF_PATHS_PLUGINS
  value: /var/lib/grafana/plugins
- name: GF_PATHS_PROVISIONING
  value: /etc/grafana/provisioning
- name: GF_PATHS_LOGS
  value: /var/log/grafana
- name: GF_LOG_MODE
  value: console
- name: GF_ANALYTICS_REPORTING_ENABLED
  value: "false"
- name: GF_ANALYTICS_CHECK_FOR_UPDATES
  value: "false"
{{- $root := "" }}
{{- if .Values.grafana.ingress.enabled }}
{{- $root = printf "%s://%s/" (ternary "https" "http" (ne .Values.grafana.ingress.tlsSecret "")) .Values.grafana.ingress.host }}
{{- else if .Values.grafana.httpRoute.enabled }}
{{- $root = .Values.grafana.httpRoute.rootUrl }}
{{- end }}
{{- if $root }}
- name: GF_SERVER_ROOT_URL
  value: {{ $root | quote }}
{{- end }}
{{- if hasPrefix "https://" $root }}
# Served over HTTPS: the browser sends the session cookie over HTTPS only. cookie_secure of
# [security], default false, "set to true if you host Grafana behind HTTPS" (conf/defaults.ini
# of grafana/grafana@002060fd, not at the pinned tag).
- name: GF_SECURITY_COOKIE_SECURE
  value: "true"
{{- end }}
# Grafana's plugin preinstaller off. It runs at every start and replaces the bundled data-source
# plugins (Prometheus, Tempo, Loki...) with newer ones from grafana.com; on this read-only root
# filesystem the replacement fails after the plugin was unloaded, which leaves the data source
# unregistered ("plugin not registered"), as grafana/grafana#132528 reports for 13.2 (not tried
# here). The plugins directory is read-only too, so nothing it fetched could be installed.
# preinstall_disabled of [plugins], default false: read in pkg/setting/setting_plugins.go of
# grafana/grafana@0a8a924, not at the pinned Grafana's tag.
- name: GF_PLUGINS_PREINSTALL_DISABLED
  value: "true"
{{- end }}

{{/*
grafana.extraEnv, refused where it names a variable betrace.grafanaEnv sets, or its __FILE form
(the official image's packaging/docker/run.sh reads NAME__FILE into NAME and exits when both
are set: read on grafana/grafana's main branch, not at the pinned tag), or a setting that undoes
what the chart relies on.
*/}}
{{- define "betrace.grafanaExtraEnv" -}}
{{- $fixed := dict }}
{{- range (include "betrace.grafanaEnv" . | fromYamlArray) }}{{ $_ := set $fixed .name true }}{{ end }}
{{- $undoes := dict
  "GF_DEFAULT_APP_MODE" "development mode loads every unsigned plugin, not only the BeTrace app"
  "GF_SERVER_PROTOCOL" "the chart's probes and Service speak plain HTTP to Grafana"
  "GF_SERVER_HTTP_PORT" "the chart's Service, probes and NetworkPolicy reach Grafana on 3000"
  "GF_SERVER_HTTP_ADDR" "the chart's Service and probes reach Grafana on the pod's address"
  "GF_PLUGINS_DISABLE_PLUGINS" "it can keep the BeTrace app from loading"
  "GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION" "the admin the chart's Secret names would never be made"
  "GF_DATABASE_PATH" "it moves Grafana's database off the chart's volume" }}
{{- range $i, $e := .Values.grafana.extraEnv }}
{{- $base := trimSuffix "__FILE" $e.name }}
{{- if hasKey $fixed $base }}
{{- fail (printf "grafana.extraEnv[%d].name: %s: %s is set by the chart itself, and another value would override it" $i $e.name $base) }}
{{- end }}
{{- if hasKey $undoes $base }}
{{- fail (printf "grafana.extraEnv[%d].name: %s is not allowed: %s" $i $e.name (get $undoes $base)) }}
{{- end }}
{{- if hasPrefix "GF_PATHS_" $base }}
{{- fail (printf "grafana.extraEnv[%d].name: %s is not allowed: the chart's paths hold the plugin, its provisioning and the database" $i $e.name) }}
{{- end }}
{{- end }}
{{- with .Values.grafana.extraEnv }}{{ toYaml . }}{{ end }}
{{- end }}

{{/*
The annotations ingress-nginx reads, without their prefix nginx.ingress.kubernetes.io/ (the keys
and aliases of every parser's AnnotationFields under internal/ingress/annotations of
kubernetes/ingress-nginx at controller-v1.15.1). The controller ignores any other name under
that prefix without a word, so a misspelt whitelist-source-range leaves the backend's
unauthenticated API open to everyone: the chart refuses it instead.
*/}}
{{- define "betrace.nginxAnnotations" -}}
  affinity affinity-canary-behavior affinity-mode allowlist-source-range app-root
  auth-always-set-cookie auth-cache-duration auth-cache-key auth-keepalive
  auth-keepalive-requests auth-keepalive-share-vars auth-keepalive-timeout auth-method
  auth-proxy-set-headers auth-realm auth-request-redirect auth-response-headers auth-secret
  auth-secret-type auth-signin auth-signin-redirect-param auth-snippet auth-tls-error-page
  auth-tls-match-cn auth-tls-pass-certificate-to-upstream auth-tls-secret auth-tls-verify-client
  auth-tls-verify-depth auth-type auth-url backend-protocol canary canary-by-cookie
  canary-by-header canary-by-header-pattern canary-by-header-value canary-weight
  canary-weight-total client-body-buffer-size configuration-snippet connection-proxy-header
  cors-allow-credentials cors-allow-headers cors-allow-methods cors-allow-origin
  cors-expose-headers cors-max-age custom-headers custom-http-errors default-backend
  denylist-source-range disable-proxy-intercept-errors enable-access-log enable-cors
  enable-global-auth enable-modsecurity enable-opentelemetry enable-owasp-core-rules
  enable-rewrite-log fastcgi-index fastcgi-params-configmap force-ssl-redirect
  from-to-www-redirect http2-push-preload limit-allowlist limit-burst-multiplier
  limit-connections limit-rate limit-rate-after limit-rpm limit-rps limit-whitelist load-balance
  mirror-host mirror-request-body mirror-target modsecurity-snippet modsecurity-transaction-id
  opentelemetry-operation-name opentelemetry-trust-incoming-span permanent-redirect
  permanent-redirect-code preserve-trailing-slash proxy-body-size proxy-buffer-size
  proxy-buffering proxy-buffers-number proxy-busy-buffers-size proxy-connect-timeout
  proxy-cookie-domain proxy-cookie-path proxy-http-version proxy-max-temp-file-size
  proxy-next-upstream proxy-next-upstream-timeout proxy-next-upstream-tries proxy-read-timeout
  proxy-redirect-from proxy-redirect-to proxy-request-buffering proxy-send-timeout
  proxy-ssl-ciphers proxy-ssl-name proxy-ssl-protocols proxy-ssl-secret proxy-ssl-server-name
  proxy-ssl-verify proxy-ssl-verify-depth relative-redirects rewrite-target satisfy server-alias
  server-snippet service-upstream session-cookie-change-on-failure
  session-cookie-conditional-samesite-none session-cookie-domain session-cookie-expires
  session-cookie-max-age session-cookie-name session-cookie-path session-cookie-samesite
  session-cookie-secure ssl-ciphers ssl-passthrough ssl-prefer-server-ciphers ssl-redirect
  stream-snippet temporal-redirect temporal-redirect-code upstream-hash-by
  upstream-hash-by-subset upstream-hash-by-subset-size upstream-vhost use-port-in-redirects
  use-regex whitelist-source-range x-forwarded-prefix
{{- end }}

{{/* Fails on an annotation under nginx.ingress.kubernetes.io/ that ingress-nginx does not read. */}}
{{- define "betrace.checkIngressAnnotations" -}}
{{- $known := splitList " " (include "betrace.nginxAnnotations" . | replace "\n" " " | trim) }}
{{- range $key, $_ := .annotations }}
{{- if hasPrefix "nginx.ingress.kubernetes.io/" $key }}
{{- if not (has (trimPrefix "nginx.ingress.kubernetes.io/" $key) $known) }}
{{- fail (printf "%s.annotations: %s is no annotation ingress-nginx reads (controller v1.15.1): it would be ignored, and the setting with it" $.where $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A Prometheus duration (30s, 1m30s, 1h, 500ms; the units y w d h m s ms) in milliseconds, as text:
the sum of its parts.
*/}}
{{- define "betrace.durationMs" -}}
{{- $ms := dict "y" 31536000000 "w" 604800000 "d" 86400000 "h" 3600000 "m" 60000 "s" 1000 "ms" 1 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|y|w|d|h|m|s)" . -1 }}
{{- $total = add $total (mul (regexFind "^[0-9]+" . | int64) (get $ms (regexReplaceAll "^[0-9]+" . ""))) }}
{{- end }}
{{- $total }}
{{- end }}
