"""The Azure target driven by the real release runner, call by call against recording fakes."""

import tempfile
from pathlib import Path

import pytest
from azure.ai.ml.entities import (
    DefaultScaleSettings,
    KubernetesOnlineDeployment,
    ManagedOnlineDeployment,
    TargetUtilizationScaleSettings,
)

from infra.outputs import StackOutputs
from pipelines.azure.invariants import InvariantError
from pipelines.azure.registry import PRODUCTION_TAG
from pipelines.errors import MlopsError
from pipelines.release.runner import ReleaseError, release
from pipelines.targets.azure import RolloutSettings
from tests.azure.conftest import World
from tests.azure.fakes import QA_KEY, Behaviour, write_outputs


def prod_release(world: World, which: str, **rollout: object):
    """The production stage of a release whose QA stage put the image in the QA registry."""
    target = world.target(**rollout)
    world.image_in(target.outputs("qa"), getattr(world.store, which))
    version = world.version(getattr(world.store, which))
    return target, release(target, target.registry, version, world.lines.append, stage="prod")


def first_release(world: World, prod: StackOutputs) -> None:
    world.workspace(prod).with_endpoint()
    prod_release(world, "v1")
    world.log.calls.clear()
    world.lines.clear()
    world.http.requests.clear()
    world.workspace(prod).traffic_history.clear()
    world.workspace(prod).mirror_history.clear()


def production(world: World) -> str | None:
    found = world.registry().production()
    return found.version if found else None


def test_first_release_goes_to_blue_with_all_traffic(world: World, prod: StackOutputs) -> None:
    ws = world.workspace(prod).with_endpoint()
    _, log = prod_release(world, "v1")
    names = [n for n in world.log.names() if not n.startswith("registry.")]
    assert names == [
        "online_endpoints.get",  # current traffic: nothing live
        *["az", "az", "az"],  # not in the prod ACR, in the QA ACR: imported from there
        "online_endpoints.get",
        "online_deployments.begin_create_or_update",  # blue
        *["online_endpoints.get", "online_endpoints.get_keys"],  # smoke test blue directly
        *["online_endpoints.get", "online_endpoints.begin_create_or_update"],  # blue 100%
        *["online_endpoints.get", "online_endpoints.get_keys"],  # error-rate probe
        *["online_endpoints.get", "online_endpoints.get_keys"],  # smoke test the endpoint
    ]
    deployment = world.log.of("online_deployments.begin_create_or_update")[0].arg
    assert isinstance(deployment, KubernetesOnlineDeployment)
    assert deployment.name == "blue"
    assert deployment.tags["model"] == "diabetes-ridge:1"  # the model is in the image
    assert isinstance(deployment.scale_settings, TargetUtilizationScaleSettings)
    assert ws.traffic_history == [{"blue": 100}]  # nothing live: no staged shift
    assert production(world) == "1"
    assert [s for s in log.steps if "traffic" in s] == ["traffic on prod: blue 100%"]
    # the pointer moved after the last smoke test through the endpoint
    last_update = max(i for i, c in enumerate(world.log.calls) if c.name.endswith("update"))
    assert world.log.calls[last_update].name == "registry.models.create_or_update"
    assert PRODUCTION_TAG in world.log.calls[last_update].arg.tags


def test_second_release_shifts_in_stages_and_retires_blue(world: World, prod: StackOutputs) -> None:
    first_release(world, prod)
    ws = world.workspace(prod)
    _, log = prod_release(world, "v2")
    created = world.log.of("online_deployments.begin_create_or_update")
    assert [c.arg.name for c in created] == ["green"]
    assert ws.traffic_history == [
        {"green": 10, "blue": 90},
        {"green": 50, "blue": 50},
        {"green": 100, "blue": 0},
    ]
    names = world.log.names()
    promoted = max(
        i for i, c in enumerate(world.log.calls) if c.name == "registry.models.create_or_update"
    )
    last_shift = max(
        i for i, n in enumerate(names) if n == "online_endpoints.begin_create_or_update"
    )
    deleted = names.index("online_deployments.begin_delete")
    assert last_shift < promoted < deleted
    assert world.log.of("online_deployments.begin_delete")[0].kwargs["name"] == "blue"
    assert set(ws.deployments) == {"green"}
    assert production(world) == "2"
    # the 10% stage really sent requests to both versions, and each stage was probed
    routed = {name for _, path, name in world.http.requests if path == "/score"}
    assert routed == {"blue", "green"}
    assert sum("error rate 0.0% over 20 requests" in line for line in world.lines) == 3
    smoke_targets = [report.target for report in log.smoke_reports]
    assert smoke_targets == ["prod/green", "prod", "prod", "prod"]


def test_wrong_predictions_on_green_never_get_traffic(world: World, prod: StackOutputs) -> None:
    first_release(world, prod)
    world.http.behaviour["green"] = Behaviour("wrong")
    with pytest.raises(ReleaseError, match=r"smoke test prod/green directly.*golden"):
        prod_release(world, "v2")
    ws = world.workspace(prod)
    assert ws.traffic_history == []
    assert set(ws.deployments) == {"blue"}
    assert production(world) == "1"


def test_errors_under_traffic_roll_back_to_blue(world: World, prod: StackOutputs) -> None:
    first_release(world, prod)
    world.http.behaviour["green"] = Behaviour("error-routed")
    with pytest.raises(ReleaseError, match=r"error rate .* over the budget.*rolled back"):
        prod_release(world, "v2")
    ws = world.workspace(prod)
    assert ws.traffic_history == [{"green": 10, "blue": 90}, {"blue": 100}]
    assert set(ws.deployments) == {"blue"}
    assert production(world) == "1"


def test_a_first_release_failing_under_traffic_leaves_nothing_behind(
    world: World, prod: StackOutputs
) -> None:
    """Nothing was live to return traffic to: blue's share goes to 0, then blue goes."""
    ws = world.workspace(prod).with_endpoint()
    world.http.behaviour["blue"] = Behaviour("error-routed")
    with pytest.raises(ReleaseError, match=r"rolled back"):
        prod_release(world, "v1")
    assert ws.traffic_history == [{"blue": 100}, {"blue": 0}]
    assert set(ws.deployments) == set()
    assert production(world) is None


def test_a_failed_deployment_is_removed(world: World, prod: StackOutputs) -> None:
    first_release(world, prod)
    ws = world.workspace(prod)
    ws.fail_deployment = True
    ws.deployment_logs["green/storage-initializer"] = "downloading model\nError: 403 on blob\n"
    with pytest.raises(ReleaseError, match=r"deployment green of diabetes-ridge:2 failed.*crashed"):
        prod_release(world, "v2")
    assert world.log.of("online_deployments.begin_delete")[0].kwargs["name"] == "green"
    assert production(world) == "1"


def test_a_failed_deployment_names_its_containers_last_log_lines(
    world: World, prod: StackOutputs
) -> None:
    first_release(world, prod)
    ws = world.workspace(prod)
    ws.fail_deployment = True
    ws.deployment_logs["green/storage-initializer"] = "downloading model\nError: 403 on blob\n"
    with pytest.raises(ReleaseError) as raised:
        prod_release(world, "v2")
    assert "storage-initializer: Error: 403 on blob" in str(raised.value)
    containers = [
        c.kwargs["container_type"]
        for c in world.log.of("online_deployments.get_logs")
        if c.kwargs["name"] == "green"
    ]
    assert containers == ["storage-initializer", "inference-server"]
    assert any("Error: 403 on blob" in line for line in world.lines)  # the full tail, printed


def test_routes_come_from_the_endpoints_own_uris() -> None:
    from pipelines.targets.azure import endpoint_routes

    routes = endpoint_routes(
        "https://e.westeurope.inference.ml.azure.com/score",
        "https://e.westeurope.inference.ml.azure.com/swagger.json",
    )
    assert routes == {
        "base_url": "https://e.westeurope.inference.ml.azure.com",
        "score_path": "/score",
        "swagger_path": "/swagger.json",
        "health_path": "/swagger.json",
    }
    assert endpoint_routes("https://e.x/score", None)["swagger_path"] == "/swagger.json"
    with pytest.raises(MlopsError, match="on another host"):
        endpoint_routes("https://e.x/score", "https://other.x/swagger.json")


def test_mirroring_is_refused_on_kubernetes_before_any_deployment(
    world: World, prod: StackOutputs
) -> None:
    first_release(world, prod)
    with pytest.raises(ReleaseError, match=r"Kubernetes, which does not support mirrored"):
        prod_release(world, "v2", mirror_percent=10)
    assert world.log.of("online_deployments.begin_create_or_update") == []


def test_managed_endpoint_mirrors_before_the_shift(
    world: World, prod_managed: StackOutputs, stacks_dir: Path
) -> None:
    write_outputs(stacks_dir, [prod_managed])
    first_release(world, prod_managed)
    ws = world.workspace(prod_managed)
    prod_release(world, "v2", mirror_percent=20)
    deployment = world.log.of("online_deployments.begin_create_or_update")[0].arg
    assert isinstance(deployment, ManagedOnlineDeployment)
    assert isinstance(deployment.scale_settings, DefaultScaleSettings)
    assert ws.mirror_history[:2] == [{"green": 20}, {}]  # on, then off before any live traffic
    # mirroring only re-sent the live split; the first shift is the staged 10%
    assert next(t for t in ws.traffic_history if t.get("green")) == {"green": 10, "blue": 90}
    assert world.log.of("online_deployments.get_logs")[0].kwargs["name"] == "green"
    assert production(world) == "2"


def test_server_errors_in_the_mirror_stop_the_release(
    world: World, prod_managed: StackOutputs, stacks_dir: Path
) -> None:
    write_outputs(stacks_dir, [prod_managed])
    first_release(world, prod_managed)
    ws = world.workspace(prod_managed)
    ws.deployment_logs["green"] = "Traceback (most recent call last):\n  KeyError: 'x'\n"
    with pytest.raises(ReleaseError, match=r"mirrored requests with server errors"):
        prod_release(world, "v2", mirror_percent=20)
    assert ws.mirror_history[-1] == {}
    assert set(ws.deployments) == {"blue"}
    assert production(world) == "1"


def test_qa_rolls_the_container_image_and_keeps_its_secrets(world: World, qa: StackOutputs) -> None:
    world.workspace(qa)  # the HTTP fake finds the QA service through the qa stack
    target = world.target()
    version = world.version(world.store.v2)
    log = release(target, target.registry, version, world.lines.append, stage="qa")
    assert world.clients.aci.image == log.artifacts["qa/qa"]
    assert world.clients.aci.image.startswith(f"{qa.acr_login_server}/diabetes-scoring:")
    env = {v.name: v for v in world.clients.aci.group.containers[0].environment_variables}
    assert env["SCORING_API_KEY"].secure_value == QA_KEY
    assert env["APPLICATIONINSIGHTS_CONNECTION_STRING"].secure_value == (
        qa.app_insights_connection_string
    )
    assert world.log.names("aci") == [
        "aci.container_groups.get",
        "aci.container_groups.begin_create_or_update",
    ]
    (report,) = log.smoke_reports
    assert report.passed
    assert [c.name for c in report.checks] == ["health", "openapi", "golden", "bad-request", "auth"]


def test_one_image_from_qa_to_production(
    world: World, qa: StackOutputs, prod: StackOutputs
) -> None:
    """QA builds the image in its registry; production imports that image, never rebuilds it."""
    world.workspace(qa)
    world.workspace(prod).with_endpoint()
    target = world.target()
    version = world.version(world.store.v1)
    log = release(target, target.registry, version, world.lines.append)
    az = [call.args for call in world.log.of("az")]
    assert [args[:2] for args in az] == [
        ("acr", "repository"),  # not in the QA registry yet
        ("acr", "build"),  # built there, once
        ("acr", "repository"),  # not in the prod registry
        ("acr", "repository"),  # in the QA registry
        ("acr", "import"),  # copied from it
    ]
    build, imported = az[1], az[4]
    assert build[build.index("--registry") + 1] == qa.acr_name
    tag = build[build.index("--image") + 1]
    source, target_tag = (imported[imported.index(flag) + 1] for flag in ("--source", "--image"))
    assert source == tag == target_tag
    assert imported[imported.index("--registry") + 1].endswith(f"/registries/{qa.acr_name}")
    # The report names the image each stage serves: one digest, two registries.
    assert log.to_dict()["artifacts"] == {
        "qa/qa": f"{qa.acr_login_server}/{tag}",
        "prod/blue": f"{prod.acr_login_server}/{tag}",
    }
    assert world.clients.aci.image == f"{qa.acr_login_server}/{tag}"
    deployment = world.log.of("online_deployments.begin_create_or_update")[0].arg
    assert deployment.environment.image == f"{prod.acr_login_server}/{tag}"
    assert deployment.code_configuration is None and deployment.model is None
    assert deployment.tags["image_digest"] == tag.split(":", 1)[1]
    # A second release of the same version finds the image in both registries: no build.
    world.log.calls.clear()
    world.workspace(prod).with_endpoint({"blue": 100})
    release(target, target.registry, version, world.lines.append, stage="qa")
    assert [call.args[:2] for call in world.log.of("az")] == [("acr", "repository")]


def test_a_change_to_the_scoring_code_is_a_new_image(
    world: World, qa: StackOutputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tag covers the scoring code, requirements and Dockerfile: a change is rebuilt."""
    import shutil

    import pipelines.azure.image as image

    world.workspace(qa)
    before = world.image_in(qa, world.store.v1)
    scoring = tmp_path / "scoring"
    shutil.copytree(image.SCORING_DIR, scoring)
    (scoring / "score.py").write_text((scoring / "score.py").read_text() + "\n# changed\n")
    monkeypatch.setattr(image, "SCORING_DIR", scoring)
    target = world.target()
    log = release(target, target.registry, world.version(world.store.v1), stage="qa")
    (build,) = [call.args for call in world.log.of("az") if call.args[1] == "build"]
    after = build[build.index("--image") + 1]
    assert after != before.tag and after.startswith("diabetes-scoring:")
    assert log.artifacts["qa/qa"].endswith(after)
    digest = world.store.v1.digest
    assert f"MODEL_SHA256={digest}" in build
    # The Dockerfile is an input too.
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(image.DOCKERFILE.read_text() + "\n# changed\n")
    monkeypatch.setattr(image, "DOCKERFILE", dockerfile)
    with tempfile.TemporaryDirectory() as scratch:
        changed_dockerfile = image.scoring_image(world.version(world.store.v1), Path(scratch)).tag
        assert changed_dockerfile != after
        # And so is the hashed lock the Dockerfile installs.
        lock = tmp_path / "requirements.txt"
        lock.write_text(image.SCORING_LOCK.read_text() + "\n# relocked\n")
        monkeypatch.setattr(image, "LOCK_FILES", (lock,))
        relocked = image.scoring_image(world.version(world.store.v1), Path(scratch)).tag
        assert relocked not in (after, changed_dockerfile)


def test_production_never_builds_an_image_qa_has_not_served(
    world: World, prod: StackOutputs
) -> None:
    world.workspace(prod).with_endpoint()
    target = world.target()
    version = world.version(world.store.v1)
    with pytest.raises(ReleaseError, match=r"not in acr\w+, the qa registry; release .* to qa"):
        release(target, target.registry, version, world.lines.append, stage="prod")
    assert not [call for call in world.log.of("az") if call.args[1] in ("build", "import")]
    assert world.workspace(prod).deployments == {}


def test_a_failed_build_or_import_stops_the_release(
    world: World, qa: StackOutputs, prod: StackOutputs
) -> None:
    world.workspace(qa)
    world.workspace(prod).with_endpoint()
    world.clients.az_status["acr build"] = 1
    target = world.target()
    with pytest.raises(ReleaseError, match=r"ACR build of diabetes-scoring:\w+ in .* failed"):
        release(target, target.registry, world.version(world.store.v2), stage="qa")
    assert world.log.names("aci") == []
    world.clients.az_status = {"acr import": 1}
    with pytest.raises(ReleaseError, match=r"importing .* failed .* AcrPull"):
        prod_release(world, "v2")


def test_traffic_is_checked_before_any_call(world: World, prod: StackOutputs) -> None:
    world.workspace(prod).with_endpoint({"blue": 100})
    target = world.target()
    with pytest.raises(InvariantError, match="sum to 100"):
        target.set_traffic("prod", {"blue": 60, "green": 60})
    assert world.log.of("online_endpoints.begin_create_or_update") == []


def test_endpoints_and_teardown(
    world: World, prod: StackOutputs, dev: StackOutputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_release(world, prod)
    views = {view.name: view for view in world.target().endpoints()}
    assert views[prod.online_endpoint_name].traffic == {"blue": 100}
    assert views[prod.online_endpoint_name].deployments["blue"].model == "diabetes-ridge:1"
    monkeypatch.setenv("MLOPS_STACK", "prod")
    with pytest.raises(MlopsError, match="refuses to remove production"):
        world.target().teardown()
    monkeypatch.setenv("MLOPS_STACK", "dev")
    ws = world.workspace(dev).with_endpoint()
    ws.deployments["blue"] = world.workspace(prod).deployments["blue"]
    ws.endpoint.traffic = {"blue": 100}
    assert world.target().teardown() == [f"{dev.online_endpoint_name}/blue"]
    assert ws.deployments == {}


def test_rollout_settings_from_the_environment() -> None:
    settings = RolloutSettings.from_environment(
        {"MLOPS_TRAFFIC_STAGES": "25,100", "MLOPS_MIRROR_PERCENT": "10"}
    )
    assert settings.traffic_stages == (25, 100)
    assert settings.mirror_percent == 10
    with pytest.raises(MlopsError, match="MLOPS_TRAFFIC_STAGES"):
        RolloutSettings.from_environment({"MLOPS_TRAFFIC_STAGES": "50,10"})
    with pytest.raises(MlopsError, match="MLOPS_MAX_ERROR_RATE"):
        RolloutSettings.from_environment({"MLOPS_MAX_ERROR_RATE": "2"})


def test_managed_deployments_get_their_own_autoscale_setting(
    world: World, prod_managed: StackOutputs, stacks_dir: Path
) -> None:
    """Azure Monitor autoscale per managed deployment: written after it, deleted with it."""
    from pipelines.azure import autoscale

    write_outputs(stacks_dir, [prod_managed])
    first_release(world, prod_managed)
    blue = autoscale.setting_url(prod_managed, "blue")
    assert list(world.clients.autoscale) == [blue]
    setting = world.clients.autoscale[blue]
    target = autoscale.deployment_id(prod_managed, "blue")
    assert setting["properties"]["targetResourceUri"] == target
    assert setting["location"] == prod_managed.location
    (profile,) = setting["properties"]["profiles"]
    assert profile["capacity"]["minimum"] == profile["capacity"]["default"] == "3"
    assert int(profile["capacity"]["maximum"]) >= 3
    out, scale_in = profile["rules"]
    assert out["metricTrigger"]["metricName"] == "CpuUtilizationPercentage"
    assert out["metricTrigger"]["metricResourceUri"] == target
    assert (out["scaleAction"]["direction"], scale_in["scaleAction"]["direction"]) == (
        "Increase",
        "Decrease",
    )
    assert setting["tags"]["model"] == "diabetes-ridge:1"
    prod_release(world, "v2")  # green takes over; blue and its setting go
    assert list(world.clients.autoscale) == [autoscale.setting_url(prod_managed, "green")]


def test_an_autoscale_setting_that_cannot_be_written_rolls_the_deployment_back(
    world: World, prod_managed: StackOutputs, stacks_dir: Path
) -> None:
    write_outputs(stacks_dir, [prod_managed])
    first_release(world, prod_managed)
    world.clients.az_status["rest --method put"] = 1
    with pytest.raises(ReleaseError, match=r"autoscale setting .*green could not be written"):
        prod_release(world, "v2")
    assert set(world.workspace(prod_managed).deployments) == {"blue"}
    assert production(world) == "1"


def test_kubernetes_deployments_scale_themselves(world: World, prod: StackOutputs) -> None:
    world.workspace(prod).with_endpoint()
    prod_release(world, "v1")
    assert world.clients.autoscale == {}  # TargetUtilizationScaleSettings, no Azure Monitor


@pytest.mark.parametrize(
    ("minimum", "maximum", "above", "message"),
    [(0, 3, 70, "1 <= min_instances"), (4, 3, 70, "1 <= min_instances"), (3, 5, 30, "above 30")],
)
def test_autoscale_plans_are_checked(
    prod_managed: StackOutputs, minimum: int, maximum: int, above: int, message: str
) -> None:
    from pipelines.azure.autoscale import setting_body
    from pipelines.azure.entities import ScalePlan

    with pytest.raises(MlopsError, match=message):
        setting_body(prod_managed, "blue", ScalePlan(minimum, maximum, above), {})
