{{/*
Every room, as values key -> room (command, component label and object suffix). Templates range over this
dict (sorted by key), so one named template renders any room's objects and rooms differ only in values.
The same rooms as workers/common/contract/rooms.py (values_key: command); tests/common/test_rooms.py checks it.
*/}}
{{- define "notifier.rooms" -}}
cleaner: cleaner
controller: controller
core: core
monitor: monitor
puller: puller
pusher: pusher
wsDelivery: ws-delivery
{{- end }}

{{/* Rooms that serve HTTP besides the ops port. */}}
{{- define "notifier.httpRooms" -}}
core: core
wsDelivery: ws-delivery
{{- end }}

{{- define "notifier.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: the release name, so the cleaner is always `deploy/<release>-cleaner`. */}}
{{- define "notifier.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- end }}

{{/* Name of a room's objects; takes (dict "root" $ "room" ROOM). */}}
{{- define "notifier.roomName" -}}
{{- printf "%s-%s" (include "notifier.fullname" .root) .room | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels; takes (dict "root" $ "room" ROOM). Never the chart version. */}}
{{- define "notifier.selectorLabels" -}}
app.kubernetes.io/name: {{ include "notifier.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- with .room }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Labels of every object; takes (dict "root" $) or (dict "root" $ "room" ROOM). */}}
{{- define "notifier.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "notifier.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: notifier
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
A room's image, `<registry>/<repository>:<tag>`; takes (dict "root" $ "image" ROOM_IMAGE). The room's registry
and tag override the global image.registry and image.tag; the tag falls back to the chart's appVersion.
*/}}
{{- define "notifier.image" -}}
{{- $registry := default .root.Values.image.registry .image.registry }}
{{- $tag := default (default .root.Chart.AppVersion .root.Values.image.tag) .image.tag }}
{{- if $registry }}
{{- printf "%s/%s:%s" (trimSuffix "/" $registry) .image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .image.repository $tag }}
{{- end }}
{{- end }}

{{/* A room's image pull policy; takes (dict "root" $ "image" ROOM_IMAGE). */}}
{{- define "notifier.pullPolicy" -}}
{{- default .root.Values.image.pullPolicy .image.pullPolicy }}
{{- end }}

{{- define "notifier.secretName" -}}
{{- default (include "notifier.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "notifier.controllerServiceAccount" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "notifier.roomName" (dict "root" . "room" "controller")) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
What each room reaches: Redis, RabbitMQ (amqp), the JWT secret (jwt: it verifies or mints tokens), core's
HTTP API, the Kubernetes API. The connection settings and the NetworkPolicies follow it.
*/}}
{{- define "notifier.needs" -}}
pusher: [redis, amqp]
puller: [redis, jwt, core]
monitor: [redis]
cleaner: [redis]
core: [redis, amqp, jwt]
ws-delivery: [redis, amqp, jwt]
controller: [redis, kubernetes]
{{- end }}

{{/*
The shared settings of a room (DESIGN section 13), from values and the connections Secret; takes (dict "root" $
"room" ROOM). Only the Secret keys the room uses are injected: a room that never verifies or mints tokens
cannot mint an admin token, one that never talks to RabbitMQ holds no broker credentials.
*/}}
{{- define "notifier.env" -}}
{{- $root := .root -}}
{{- $need := index (include "notifier.needs" $root | fromYaml) .room -}}
{{- $secret := include "notifier.secretName" $root -}}
- name: NOTIFIER_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: redis-url}
{{- if has "amqp" $need }}
- name: NOTIFIER_AMQP_URL
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: amqp-url}
{{- end }}
{{- if has "jwt" $need }}
- name: NOTIFIER_JWT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: jwt-secret}
{{- end }}
- name: NOTIFIER_REDIS_WAIT_REPLICAS
  value: {{ $root.Values.redis.waitReplicas | quote }}
- name: NOTIFIER_REDIS_WAIT_TIMEOUT_S
  value: {{ $root.Values.redis.waitTimeoutSeconds | quote }}
- name: NOTIFIER_STREAM
  value: {{ $root.Values.stream.name | quote }}
- name: NOTIFIER_SHARDS
  value: {{ $root.Values.shards | quote }}
{{- if has "core" $need }}
- name: NOTIFIER_CORE_URL
  value: {{ printf "http://%s:%v" (include "notifier.roomName" (dict "root" $root "room" "core")) $root.Values.ports.http | quote }}
{{- end }}
- name: NOTIFIER_HTTP_HOST
  value: 0.0.0.0
- name: NOTIFIER_HTTP_PORT
  value: {{ $root.Values.ports.http | quote }}
- name: NOTIFIER_OPS_HOST
  value: 0.0.0.0
- name: NOTIFIER_OPS_PORT
  value: {{ $root.Values.ports.ops | quote }}
- name: NOTIFIER_LOG_FORMAT
  value: {{ $root.Values.logFormat | quote }}
{{- end }}

{{/* The writable /tmp of every container (the root filesystem is read-only). */}}
{{- define "notifier.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end }}

{{- define "notifier.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
A room's Deployment from its values block; takes (dict "root" $ "room" ROOM "values" BLOCK).
*/}}
{{- define "notifier.deployment" -}}
{{- $root := .root }}
{{- $v := .values }}
{{- $isController := eq .room "controller" }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "notifier.roomName" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "notifier.labels" . | nindent 4 }}
spec:
  {{- if not $v.autoscaling.enabled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- with $v.strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "notifier.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "notifier.labels" . | nindent 8 }}
      annotations:
        checksum/secret: {{ toJson $root.Values.secrets | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- if $isController }}
      serviceAccountName: {{ include "notifier.controllerServiceAccount" $root }}
      {{- else }}
      automountServiceAccountToken: false
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .room }}
          image: {{ include "notifier.image" (dict "root" $root "image" $v.image) }}
          imagePullPolicy: {{ include "notifier.pullPolicy" (dict "root" $root "image" $v.image) }}
          command: ["notifier", {{ .room | quote }}]
          env:
            {{- include "notifier.env" (dict "root" $root "room" .room) | nindent 12 }}
            {{- if $isController }}
            - name: POD_ID
              valueFrom:
                fieldRef: {fieldPath: metadata.name}
            {{- if not (include "notifier.envValue" (dict "env" $v.env "name" "NOTIFIER_CONTROLLER_PEERING")) }}
            - name: NOTIFIER_CONTROLLER_PEERING
              value: {{ include "notifier.peeringName" $root | quote }}
            {{- end }}
            {{- if not $root.Values.rbac.clusterScoped }}
            - name: NOTIFIER_CONTROLLER_NAMESPACES
              value: {{ $root.Release.Namespace | quote }}
            {{- end }}
            {{- end }}
            {{- with $v.env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            {{- if has .room (values (include "notifier.httpRooms" $root | fromYaml)) }}
            - name: http
              containerPort: {{ $root.Values.ports.http }}
              protocol: TCP
            {{- end }}
            - name: ops
              containerPort: {{ $root.Values.ports.ops }}
              protocol: TCP
          startupProbe:
            httpGet: {path: /healthz, port: ops}
            {{- toYaml $v.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet: {path: /healthz, port: ops}
            {{- toYaml $v.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet: {path: /readyz, port: ops}
            {{- toYaml $v.probes.readiness | nindent 12 }}
          {{- with $v.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            {{- include "notifier.tmpMount" $root | nindent 12 }}
      volumes:
        {{- include "notifier.tmpVolume" $root | nindent 8 }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/*
"set" when the env list `env` names variable `name` (whatever its value), else ""; takes (dict "env" LIST "name" NAME).
*/}}
{{- define "notifier.envValue" -}}
{{- range .env }}
{{- if eq .name $.name }}set{{ end }}
{{- end }}
{{- end }}

{{/*
The controller's kopf peering name: NOTIFIER_CONTROLLER_PEERING from controller.env, else `<fullname>-controller`,
so that every release has a peering object of its own; empty means standalone (no peering object, one replica).
*/}}
{{- define "notifier.peeringName" -}}
{{- $name := include "notifier.roomName" (dict "root" . "room" "controller") }}
{{- range .Values.controller.env }}
{{- if eq .name "NOTIFIER_CONTROLLER_PEERING" }}
{{- $name = .value | default "" }}
{{- end }}
{{- end }}
{{- $name }}
{{- end }}

{{/*
The namespaces a controller serves, comma-separated, or "*" for every namespace; takes (dict "clusterScoped" BOOL
"namespace" RELEASE_NAMESPACE "env" ENV_LIST). A namespaced release serves its own namespace; a cluster-scoped
one the namespaces in NOTIFIER_CONTROLLER_NAMESPACES, or every namespace when it is empty or absent.
*/}}
{{- define "notifier.servedNamespaces" -}}
{{- if not .clusterScoped }}
{{- .namespace }}
{{- else }}
{{- $served := "" }}
{{- range .env }}
{{- if eq .name "NOTIFIER_CONTROLLER_NAMESPACES" }}
{{- $served = (.value | default "") | replace " " "" }}
{{- end }}
{{- end }}
{{- default "*" $served }}
{{- end }}
{{- end }}
