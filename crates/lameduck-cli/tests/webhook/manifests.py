"""Checks a rendering of deploy/webhook: every object passes
kubernetes-validate (strict) for the oldest and newest Kubernetes the webhook
is for, cert-manager's own kinds aside, and the objects say what they must.

usage: manifests.py RENDERED.yaml cert-manager|self-signed [CA_BUNDLE]
"""
import sys

import kubernetes_validate
import yaml

path, variant = sys.argv[1], sys.argv[2]
ca_bundle = sys.argv[3] if len(sys.argv) > 3 else ""
docs = [d for d in yaml.safe_load_all(open(path)) if d]
by_kind = {}
for doc in docs:
    by_kind.setdefault(doc["kind"], []).append(doc)
    if doc["apiVersion"].startswith("cert-manager.io/"):
        continue
    for version in ("1.33.0", "1.37.0"):
        kubernetes_validate.validate(doc, version, strict=True)

deployment = by_kind["Deployment"][0]
assert deployment["spec"]["replicas"] == 2, "two replicas"
container = deployment["spec"]["template"]["spec"]["containers"][0]
argv = container["command"] + container.get("args", [])
assert argv[1:3] == ["run", "--drain-delay"] and "webhook" in argv, "runs under lameduck run: %r" % argv
assert by_kind["PodDisruptionBudget"][0]["spec"]["maxUnavailable"] == 1
assert by_kind["Service"][0]["spec"]["ports"][0]["port"] == 443
config = by_kind["MutatingWebhookConfiguration"][0]
paths = set()
for hook in config["webhooks"]:
    assert hook["failurePolicy"] == "Ignore", hook["name"]
    assert hook["sideEffects"] == "None", hook["name"]
    assert hook["timeoutSeconds"] == 5, hook["name"]
    assert hook["admissionReviewVersions"] == ["v1"], hook["name"]
    assert hook.get("matchConditions"), "only opted-in pods are sent"
    service = hook["clientConfig"]["service"]
    assert (service["name"], service["namespace"]) == ("lameduck-webhook", "lameduck")
    paths.add(service["path"])
    if variant == "self-signed":
        got = hook["clientConfig"]["caBundle"].replace("\n", "")
        assert got == ca_bundle, "caBundle is the CA of lameduck webhook certs"
assert paths == {"/mutate", "/mutate-namespace"}, paths
if variant == "cert-manager":
    assert by_kind["Certificate"][0]["spec"]["secretName"] == "lameduck-webhook-tls"
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "lameduck/lameduck-webhook"
else:
    secret = by_kind["Secret"][0]
    assert secret["type"] == "kubernetes.io/tls" and set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
print("ok", variant, len(docs), "objects")
