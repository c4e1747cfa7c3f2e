"""collector/ and deploy/ as files: they parse, they agree with each other and with the service,
and the Collector's GenAI filter is the service's own test. (No container engine runs here:
tests/integration/test_collector.py runs the Collector configs in the real Collector, and
`otelcol validate` checks the ones inside deploy/.)"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_labelstudio.config import Settings
from otel_labelstudio.genai_filter import is_genai_event, is_genai_record
from otel_labelstudio.model import SpanRecord

REPO = Path(__file__).resolve().parents[2]
COLLECTOR = REPO / "collector"
DEPLOY = REPO / "deploy"
COLLECTOR_VERSION = "0.152.0"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s(kind: str, name: str) -> dict[str, Any]:
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in load_all(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name} in deploy/kubernetes")


def without_resolver(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    config["exporters"]["loadbalancing"].pop("resolver")
    return config


@pytest.mark.parametrize(
    "path",
    sorted(
        [*COLLECTOR.glob("*.yaml"), *DEPLOY.rglob("*.yaml"), DEPLOY / "kubernetes/secret.example"]
    ),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_every_file_parses(path: Path) -> None:
    assert load_all(path)


def test_manifest_pins_one_collector_release() -> None:
    manifest = load(COLLECTOR / "manifest.yaml")
    assert manifest["dist"]["version"] == COLLECTOR_VERSION
    script = (REPO / "scripts" / "build-collector.sh").read_text()
    assert f"COLLECTOR_VERSION={COLLECTOR_VERSION}" in script
    minor = int(COLLECTOR_VERSION.split(".")[1])
    modules = [
        entry["gomod"]
        for kind in ("receivers", "processors", "exporters", "extensions", "providers")
        for entry in manifest[kind]
    ]
    for module in modules:
        _name, version = module.split()
        # Core stable modules (v1.x) are released with v0.x: v1.(x - 94) goes with v0.x.
        assert version in (f"v{COLLECTOR_VERSION}", f"v1.{minor - 94}.0"), module
    # The deploys run the contrib image of the same release (tested here, with the same
    # loadbalancing exporter).
    images = [
        service["image"]
        for service in load(DEPLOY / "compose" / "compose.yaml")["services"].values()
    ]
    images += [
        container["image"]
        for container in k8s("Deployment", "otel-collector")["spec"]["template"]["spec"][
            "containers"
        ]
    ]
    collectors = [image for image in images if "opentelemetry-collector" in image]
    assert collectors == [f"otel/opentelemetry-collector-contrib:{COLLECTOR_VERSION}"] * 2
    names = " ".join(modules)
    for component in (
        "receiver/otlpreceiver",
        "exporter/otlpexporter",
        "exporter/otlphttpexporter",
        "exporter/loadbalancingexporter",
        "processor/filterprocessor",
        "processor/batchprocessor",
        "extension/storage/filestorage",
    ):
        assert component in names


def filter_regex(condition: str) -> re.Pattern[str]:
    """The regular expression inside an OTTL condition's first string literal after a comma."""
    literal = re.search(r', "((?:[^"\\]|\\.)*)"\)', condition)
    assert literal, condition
    return re.compile(json.loads(f'"{literal.group(1)}"'))


@pytest.mark.parametrize(
    "keys",
    [
        {"gen_ai.system": "openai"},
        {"http.route": "/", "gen_ai.prompt.0.content": "hi"},
        {"llm.model_name": "m"},
        {"openinference.span.kind": "LLM"},
        {"ai.model.id": "m"},
        {"ai.prompt.messages": "[]"},
        {"ai.operationId": "x"},
        {"http.route": "/orders"},
        {"xgen_ai.system": "not a prefix"},
        {"openinference.span.kind.extra": "no"},
        {"note": 'a value naming "gen_ai.system" does not count'},
        {},
    ],
)
def test_forward_filter_keeps_the_spans_the_service_keeps(keys: dict[str, str]) -> None:
    processor = load(COLLECTOR / "forward.yaml")["processors"]["filter/genai"]
    (condition,) = processor["trace_conditions"]
    assert condition.startswith("not IsMatch(Keys(span.attributes), ")
    # The Collector matches the JSON text of the attribute keys (OTTL's StringLikeGetter of a
    # slice is json.Marshal: no spaces).
    kept = filter_regex(condition).search(json.dumps(list(keys), separators=(",", ":")))
    span = SpanRecord(
        trace_id="0" * 31 + "1",
        span_id="0" * 15 + "1",
        name="s",
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=dict(keys),
    )
    assert bool(kept) == is_genai_record(span)


@pytest.mark.parametrize(
    ("event_name", "attributes"),
    [
        ("gen_ai.user.message", {}),
        (None, {"event.name": "gen_ai.choice"}),
        ("app.started", {}),
        (None, {"gen_ai.system": "openai"}),
        (None, {}),
    ],
)
def test_forward_filter_keeps_the_events_the_service_keeps(
    event_name: str | None, attributes: dict[str, str]
) -> None:
    processor = load(COLLECTOR / "forward.yaml")["processors"]["filter/genai"]
    (condition,) = processor["log_conditions"]
    assert condition == (
        'not (IsMatch(log.event_name, "^gen_ai\\\\.") or '
        'IsMatch(log.attributes["event.name"], "^gen_ai\\\\."))'
    )
    pattern = re.compile(r"^gen_ai\.")
    kept = any(
        isinstance(value, str) and pattern.search(value)
        for value in (event_name, attributes.get("event.name"))
    )
    assert kept == is_genai_event(event_name, attributes)


def test_forward_and_scale_out_queue_on_disk_and_retry_without_end() -> None:
    forward = load(COLLECTOR / "forward.yaml")
    exporter = forward["exporters"]["otlp/labelstudio"]
    scale_out = load(COLLECTOR / "scale-out.yaml")
    balancer = scale_out["exporters"]["loadbalancing"]
    for config, settings in ((forward, exporter), (scale_out, balancer)):
        assert settings["retry_on_failure"]["enabled"] is True
        assert settings["retry_on_failure"]["max_elapsed_time"] == "0s"
        queue = settings["sending_queue"]
        assert queue["enabled"] is True
        assert queue["storage"] in config["extensions"]
        assert queue["storage"] in config["service"]["extensions"]
    assert balancer["routing_key"] == "traceID"
    # The per-replica exporter holds nothing in memory: a batch leaves the persistent queue
    # only once a replica acknowledged it.
    assert balancer["protocol"]["otlp"]["sending_queue"]["enabled"] is False
    assert balancer["protocol"]["otlp"]["retry_on_failure"]["enabled"] is True
    pipelines = scale_out["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == pipelines["logs"]["exporters"] == ["loadbalancing"]


def test_deploy_collector_configs_are_scale_out_with_the_dns_resolver() -> None:
    scale_out = load(COLLECTOR / "scale-out.yaml")
    compose = load(DEPLOY / "compose" / "collector.yaml")
    configmap = k8s("ConfigMap", "otel-collector")
    kubernetes = yaml.safe_load(configmap["data"]["collector.yaml"])
    assert without_resolver(compose) == without_resolver(scale_out)
    assert without_resolver(kubernetes) == without_resolver(scale_out)
    compose_dns = compose["exporters"]["loadbalancing"]["resolver"]["dns"]
    k8s_dns = kubernetes["exporters"]["loadbalancing"]["resolver"]["dns"]
    services = load(DEPLOY / "compose" / "compose.yaml")["services"]
    assert compose_dns["hostname"] in services
    headless = k8s("Service", k8s_dns["hostname"])
    assert headless["spec"]["clusterIP"] == "None"
    grpc_ports = {p["port"] for p in headless["spec"]["ports"] if p["name"] == "otlp-grpc"}
    assert compose_dns["port"] == k8s_dns["port"] == "4317" and grpc_ports == {4317}


def test_compose_file() -> None:
    compose = load(DEPLOY / "compose" / "compose.yaml")
    services = compose["services"]
    assert {"postgres", "label-studio", "otel-labelstudio", "collector"} <= set(services)
    studio = services["label-studio"]["environment"]
    assert studio["DJANGO_DB"] == "default" and studio["POSTGRE_HOST"] == "postgres"
    service = services["otel-labelstudio"]
    assert service["deploy"]["replicas"] >= 2
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / "compose" / service["build"]["context"] / "deploy" / "Dockerfile").exists()
    # Secrets only from the environment (.env), and required.
    for env in (studio, service["environment"], services["collector"]["environment"]):
        for name, value in env.items():
            if any(word in name for word in ("PASSWORD", "API_KEY", "TOKEN")):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), name
    # Bind-mounted files (not `configs:`, which docker-compose v1 ignores outside a swarm).
    mounts = [m for s in services.values() for m in s.get("volumes", []) if m.startswith("./")]
    assert len(mounts) == 2
    for mount in mounts:
        assert (DEPLOY / "compose" / mount.split(":")[0]).is_file(), mount
    assert "deploy/compose/.env" in (REPO / ".gitignore").read_text().splitlines()


def test_dockerfile_runs_unprivileged_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    final_stage = text.rsplit("\nFROM ", 1)[1]
    (user,) = re.findall(r"^USER (\S+)", final_stage, re.MULTILINE)
    assert int(user.split(":")[0]) >= 1000
    assert re.search(r"^HEALTHCHECK .*\n.*/readyz", final_stage, re.MULTILINE)
    assert 'ENTRYPOINT ["otel-labelstudio"]' in final_stage
    assert "uv sync --frozen" in text


def test_kubernetes_deployment_probes_secret_and_headless_service() -> None:
    deployment = k8s("Deployment", "otel-labelstudio")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "otlp-http"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["LABEL_STUDIO_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "otel-labelstudio"
    assert "value" not in env["LABEL_STUDIO_API_KEY"]
    (secret,) = load_all(DEPLOY / "kubernetes" / "secret.example")
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"] if "valueFrom" in e}
    assert keys <= set(secret["stringData"])
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    headless = k8s("Service", "otel-labelstudio-headless")
    assert headless["spec"]["selector"].items() <= labels.items()
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    config_path = env["OTEL_LABELSTUDIO_CONFIG"]["value"]
    assert str(Path(config_path).parent) in mounted


@pytest.mark.parametrize("where", ["compose", "kubernetes"])
def test_service_configs_load(where: str, tmp_path: Path) -> None:
    if where == "compose":
        text = (DEPLOY / "compose" / "routes.yaml").read_text()
    else:
        text = k8s("ConfigMap", "otel-labelstudio")["data"]["routes.yaml"]
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    environ = {
        "LABEL_STUDIO_URL": "http://label-studio:8080",
        "LABEL_STUDIO_API_KEY": "key-from-the-secret",
        "OTEL_LABELSTUDIO_AUTH_TOKEN": "token-from-the-secret",
    }
    settings = Settings.load({"config": path}, environ=environ)
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "key-from-the-secret"
    assert settings.url == "http://label-studio:8080"
