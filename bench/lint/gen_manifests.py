#!/usr/bin/env python3
"""Writes a stream of Kubernetes manifests, as `helm template` prints a
large umbrella chart: Deployments and the Services in front of them.

usage: gen_manifests.py DOCS [SEED] > stream.yaml

DOCS documents in all, 3 Deployments for every 2 Services, each led by a
`# Source:` comment. Sizes follow common charts: a Deployment of 60 to 110
lines (labels, annotations, probes, resources, env, volumes, a sidecar on
some), a Service of 15 to 25. Deterministic for a given SEED. A mix of
what the linters look at: probes on most containers (checkov's CKV_K8S_8,
CKV_K8S_9), preStop sleeps or `lameduck run` on some (lameduck's LD201),
`sh -c` commands on a few (LD204).
"""
import random
import sys


def labels(name, indent, rng):
    pad = " " * indent
    out = [
        f"{pad}app.kubernetes.io/name: {name}",
        f"{pad}app.kubernetes.io/instance: shop",
        f"{pad}app.kubernetes.io/part-of: shop",
    ]
    if rng.random() < 0.5:
        out.append(f"{pad}app.kubernetes.io/version: \"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}\"")
    return out


def container(name, image, rng, lines, pad, probes=True, main=True):
    lines.append(f"{pad}- name: {name}")
    lines.append(f"{pad}  image: \"{image}\"")
    lines.append(f"{pad}  imagePullPolicy: IfNotPresent")
    kind = rng.random()
    if main and kind < 0.15:
        lines.append(f"{pad}  command: [\"lameduck\", \"run\", \"--grace-period\", \"25s\", \"--\", \"/app/server\"]")
    elif main and kind < 0.25:
        lines.append(f"{pad}  command: [\"sh\", \"-c\", \"/app/migrate && /app/server --port 8080\"]")
    elif main:
        lines.append(f"{pad}  args: [\"--port=8080\", \"--log-format=json\", \"--metrics-port=9090\"]")
    if main:
        lines.append(f"{pad}  ports:")
        lines.append(f"{pad}    - name: http")
        lines.append(f"{pad}      containerPort: 8080")
        lines.append(f"{pad}      protocol: TCP")
        lines.append(f"{pad}    - name: metrics")
        lines.append(f"{pad}      containerPort: 9090")
        lines.append(f"{pad}      protocol: TCP")
    lines.append(f"{pad}  env:")
    for i in range(rng.randint(2, 8)):
        lines.append(f"{pad}    - name: SETTING_{i}")
        lines.append(f"{pad}      value: \"{rng.choice(['true', 'false', 'info', '30s', 'eu-west-1'])}\"")
    if main and rng.random() < 0.5:
        lines.append(f"{pad}    - name: DATABASE_URL")
        lines.append(f"{pad}      valueFrom:")
        lines.append(f"{pad}        secretKeyRef: {{name: {name}-db, key: url}}")
    if main and kind >= 0.15 and rng.random() < 0.6:
        lines.append(f"{pad}  lifecycle:")
        lines.append(f"{pad}    preStop:")
        lines.append(f"{pad}      sleep:")
        lines.append(f"{pad}        seconds: {rng.choice([5, 10, 15])}")
    if probes and rng.random() < 0.85:
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/ready")):
            lines.append(f"{pad}  {probe}:")
            lines.append(f"{pad}    httpGet:")
            lines.append(f"{pad}      path: {path}")
            lines.append(f"{pad}      port: http")
            lines.append(f"{pad}    periodSeconds: {rng.choice([5, 10])}")
            lines.append(f"{pad}    failureThreshold: 3")
    lines.append(f"{pad}  resources:")
    lines.append(f"{pad}    requests: {{cpu: {rng.choice([50, 100, 250])}m, memory: {rng.choice([64, 128, 256])}Mi}}")
    lines.append(f"{pad}    limits: {{cpu: {rng.choice([500, 1000])}m, memory: {rng.choice([256, 512, 1024])}Mi}}")
    lines.append(f"{pad}  securityContext:")
    lines.append(f"{pad}    allowPrivilegeEscalation: false")
    lines.append(f"{pad}    readOnlyRootFilesystem: true")
    lines.append(f"{pad}    capabilities: {{drop: [ALL]}}")
    if main:
        lines.append(f"{pad}  volumeMounts:")
        lines.append(f"{pad}    - name: tmp")
        lines.append(f"{pad}      mountPath: /tmp")
        lines.append(f"{pad}    - name: config")
        lines.append(f"{pad}      mountPath: /etc/{name}")
        lines.append(f"{pad}      readOnly: true")


def deployment(i, rng):
    name = f"svc-{i:05d}"
    lines = [
        "---",
        f"# Source: shop/charts/{name}/templates/deployment.yaml",
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata:",
        f"  name: {name}",
        "  namespace: shop",
        "  labels:",
        *labels(name, 4, rng),
        "    helm.sh/chart: service-2.3.1",
        "    app.kubernetes.io/managed-by: Helm",
        "spec:",
        f"  replicas: {rng.choice([2, 3, 4, 6])}",
        "  revisionHistoryLimit: 5",
        "  strategy:",
        "    type: RollingUpdate",
        "    rollingUpdate: {maxSurge: 25%, maxUnavailable: 0}",
        "  selector:",
        "    matchLabels:",
        f"      app.kubernetes.io/name: {name}",
        "      app.kubernetes.io/instance: shop",
        "  template:",
        "    metadata:",
        "      annotations:",
        f"        checksum/config: {rng.getrandbits(256):064x}",
        "        prometheus.io/scrape: \"true\"",
        "        prometheus.io/port: \"9090\"",
        "      labels:",
        f"        app.kubernetes.io/name: {name}",
        "        app.kubernetes.io/instance: shop",
        "    spec:",
        f"      serviceAccountName: {name}",
        f"      terminationGracePeriodSeconds: {rng.choice([30, 45, 60])}",
        "      securityContext:",
        "        runAsNonRoot: true",
        "        runAsUser: 10001",
        "        fsGroup: 10001",
        "      containers:",
    ]
    container("app", f"registry.example.com/shop/{name}:1.{i % 40}.{i % 7}", rng, lines, "        ")
    if rng.random() < 0.3:
        container("envoy", "envoyproxy/envoy:v1.31.2", rng, lines, "        ", probes=False, main=False)
    lines += [
        "      volumes:",
        "        - name: tmp",
        "          emptyDir: {}",
        "        - name: config",
        "          configMap:",
        f"            name: {name}",
    ]
    return lines


def service(i, rng):
    name = f"svc-{i:05d}"
    lines = [
        "---",
        f"# Source: shop/charts/{name}/templates/service.yaml",
        "apiVersion: v1",
        "kind: Service",
        "metadata:",
        f"  name: {name}",
        "  namespace: shop",
        "  labels:",
        *labels(name, 4, rng),
    ]
    if rng.random() < 0.2:
        lines += [
            "  annotations:",
            "    service.beta.kubernetes.io/aws-load-balancer-type: external",
            "    service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: ip",
        ]
    lines += [
        "spec:",
        "  type: ClusterIP",
        "  ports:",
        "    - name: http",
        "      port: 80",
        "      targetPort: http",
        "      protocol: TCP",
        "  selector:",
        f"    app.kubernetes.io/name: {name}",
        "    app.kubernetes.io/instance: shop",
    ]
    return lines


def main():
    docs = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    out = sys.stdout
    for n in range(docs):
        # 3 Deployments for every 2 Services; Service k fronts Deployment k.
        group, slot = divmod(n, 5)
        if slot < 3:
            lines = deployment(group * 3 + slot, rng)
        else:
            lines = service(group * 3 + slot - 3, rng)
        out.write("\n".join(lines))
        out.write("\n")


if __name__ == "__main__":
    main()
