"""deploy/: the replicas compose file and the Kubernetes manifests use only what mockstatus
accepts (their command lines through the real CLI parser, their env through the settings
table, the catalog through the real loader), and the manifests pass the Kubernetes schemas."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from mockstatus.catalog import load_catalog
from mockstatus.cli import build_parser, resolve_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.replicas.yml").read_text(encoding="utf-8"))
K8S = {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted((DEPLOY / "k8s").glob("*.yaml"))}


def settings_for(argv: list[str], env: dict[str, str]):
    """What mockstatus would run with: the real parser and settings resolution (a bad value raises)."""
    args = build_parser().parse_args(argv)
    assert args.command == "serve"
    return resolve_settings(args, env)[0]


# --- compose ------------------------------------------------------------------------------


def test_compose_runs_three_replicas_on_the_redis_service():
    service = COMPOSE["services"]["mockstatus"]
    assert service["deploy"]["replicas"] == 3
    settings = settings_for(service["command"], service["environment"])
    assert settings.state == "redis://redis:6379/0" and "redis" in COMPOSE["services"]
    assert settings.host == "0.0.0.0"
    assert service["healthcheck"]["test"][1:3] == ["mockstatus", "health"]


def test_nginx_balances_over_the_replicas_port():
    port = int(COMPOSE["services"]["mockstatus"]["environment"]["MOCKSTATUS_PORT"])
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    assert re.search(rf"server mockstatus:{port};", conf)
    lb = COMPOSE["services"]["lb"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in lb["volumes"]
    # Delays up to --max-delay pass through the proxy.
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1))
    assert read_timeout > 300


def test_the_replicas_use_the_repositorys_image_which_has_the_redis_extra():
    assert COMPOSE["services"]["mockstatus"]["build"] == {"context": ".."}
    lock = (ROOT / "requirements" / "image.lock").read_text(encoding="utf-8")
    assert re.search(r"^redis==", lock, re.M), "the image's lock has no redis"


# --- Kubernetes ---------------------------------------------------------------------------


def container_env(container: dict) -> dict[str, str]:
    secret = K8S["secret"]["stringData"]
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == K8S["secret"]["metadata"]["name"]
            env[item["name"]] = secret[ref["key"]]
    return env


def test_deployment_command_and_env_are_ones_mockstatus_accepts(tmp_path):
    spec = K8S["deployment"]["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    env = container_env(container)
    # The catalog the ConfigMap mounts, at the path the env names.
    catalog_path = tmp_path / "statuses.yaml"
    catalog_path.write_text(K8S["configmap"]["data"]["statuses.yaml"], encoding="utf-8")
    (mount,) = container["volumeMounts"]
    assert env["MOCKSTATUS_CONFIG"] == f"{mount['mountPath']}/statuses.yaml"
    settings = settings_for(container["args"], {**env, "MOCKSTATUS_CONFIG": str(catalog_path)})
    assert settings.state.startswith("redis://") and settings.admin_token
    assert spec["replicas"] == 3
    (port,) = container["ports"]
    assert port["containerPort"] == settings.port
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/__mockstatus/health" and probe["port"] == port["name"]


def test_configmap_catalog_loads():
    catalog = load_catalog(yaml.safe_load(K8S["configmap"]["data"]["statuses.yaml"]))
    assert catalog.get(599).reason == "Network Connect Timeout Error"


def test_service_selects_the_deployments_pods():
    service, deployment = K8S["service"]["spec"], K8S["deployment"]["spec"]
    assert service["selector"] == deployment["selector"]["matchLabels"] == deployment["template"]["metadata"]["labels"]
    (container,) = deployment["template"]["spec"]["containers"]
    assert service["ports"][0]["targetPort"] in (container["ports"][0]["name"], container["ports"][0]["containerPort"])


@pytest.mark.parametrize("name", sorted(K8S))
def test_manifest_passes_the_kubernetes_schema(name):
    # kubernetes-validate ships the schemas of every Kubernetes release: no cluster, no network.
    import kubernetes_validate

    kubernetes_validate.validate(K8S[name], kubernetes_validate.latest_version(), strict=True)
