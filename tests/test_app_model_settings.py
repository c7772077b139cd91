"""Model settings are checked when given: a bad one is a 422 that changes nothing, not a round
that fails at training time."""

from __future__ import annotations

import time

import pytest
import torch
from fastapi.testclient import TestClient

from app.runtime import Runtime
from samdsk.errors import ConfigError
from samdsk.model.config import ModelConfig
from samdsk.model.factory import check_architecture, create_architecture
from tests.test_app_round_requests import labeled_project
from tests.uploads import create_project, state_snapshot

BAD_MODEL_SETTINGS = [
    ({"human_share": 1.5}, "human_share"),
    ({"stepz": 300}, "unknown model setting 'stepz'; a request may set: "),
    ({"steps": "many"}, "steps must be an integer"),
    ({"input_size": 100}, "multiple of 32"),
    ({"machine_label_weight": -1}, "machine_label_weight"),
    ({"machine_augment": "wild"}, "machine_augment must be one of"),
    ({"keep_empty_share": "yes"}, "keep_empty_share must be a bool"),
    ({"keep_empty_share": True, "human_share": 0.5}, "cannot be combined"),
    ({"mix_human_share": 0.5, "human_share": 0.5}, "mix_human_share"),
    ({"cpu_bf16": "yes"}, "cpu_bf16 must be a bool"),
    # names the worker's model factory would not know
    ({"encoder": "resnet9999"}, "unknown encoder 'resnet9999'"),
    ({"encoder": "tu-no_such_model"}, "unknown timm encoder 'no_such_model'"),
    ({"arch": "NoSuchArch"}, "unknown arch 'NoSuchArch'"),
    # known names that smp or timm cannot build together
    ({"arch": "DPT", "encoder": "resnet18"}, "Only Timm encoders are supported for DPT"),
    ({"arch": "DeepLabV3", "encoder": "vgg11"}, "do not support dilated mode"),
    ({"arch": "Linknet", "encoder": "mit_b0"}, "not supported for Linknet"),
    ({"arch": "Unet", "encoder": "tu-vit_tiny_patch16_224"}, "Unsupported model downsampling"),
    # a network that takes only the image size it was made for
    ({"arch": "DPT", "encoder": "tu-vit_tiny_patch16_224"}, "cannot take 256x256 images"),
    # well formed, but more than a worker has or would ever finish
    ({"input_size": 1073741824}, "input_size must be at most 1024"),
    ({"batch_size": 100000}, "batch_size must be at most 128"),
    ({"steps": 10**9}, "steps must be at most 100000"),
    ({"num_workers": 500}, "num_workers must be at most 64"),
    ({"cpu_threads": 10000}, "cpu_threads must be at most 256"),
    ({"lr": 1e308}, "lr must be at most 1.0"),
    ({"weight_decay": 1e9}, "weight_decay must be at most 1.0"),
    ({"machine_label_weight": 1e300}, "machine_label_weight must be at most 10.0"),
    ({"seed": 2**40}, "seed must be at most"),
    ({"device": "gpu"}, "device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    ({"device": "cuda:x"}, "device must be"),
    # the model has one output per class of the project (here one)
    ({"num_classes": 5}, "num_classes must be the project's class count, 1"),
    # which files a worker reads is the server's configuration
    ({"encoder_weights_path": "/etc/shadow"}, "['encoder_weights_path'] are the server's"),
    ({"init_weights_path": "/srv/project-2/round-3.pt"}, "['init_weights_path'] are the server's"),
]
# At the limits, and what the README, the benchmarks and docs/results use. A device this API
# host lacks is the worker's to judge: workers may run on other machines.
GOOD_MODEL_SETTINGS = [
    {"input_size": 1024, "batch_size": 128, "steps": 100_000, "lr": 1.0, "weight_decay": 1.0},
    {"num_workers": 64, "cpu_threads": 256, "seed": 2**32 - 1, "machine_label_weight": 10.0},
    {"input_size": 160, "steps": 3000, "batch_size": 8, "cpu_threads": 2, "num_classes": 1},
    {"device": "cuda:7", "arch": "fpn", "encoder": "resnet18"},
    {"device": "cpu", "arch": "Unet", "encoder": "tu-resnet18"},
    {"arch": "DPT", "encoder": "tu-vit_tiny_patch16_224", "input_size": 224},
    # the meta device cannot run mit_b*'s constructor; the worker's real build decides
    {"arch": "FPN", "encoder": "mit_b0"},
]


@pytest.mark.parametrize(("model", "message"), BAD_MODEL_SETTINGS)
def test_bad_round_model_settings_are_422_and_start_nothing(
    client: TestClient, runtime: Runtime, model: dict[str, object], message: str
) -> None:
    project = create_project(client)
    base = f"/api/v1/projects/{project['id']}"
    before = state_snapshot(runtime)
    response = client.post(f"{base}/rounds", json={"model": model})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]["message"]
    assert state_snapshot(runtime) == before
    assert client.get(f"{base}/rounds").json() == []


@pytest.mark.parametrize(("model", "message"), BAD_MODEL_SETTINGS)
def test_bad_project_model_settings_are_422_and_create_nothing(
    client: TestClient, model: dict[str, object], message: str
) -> None:
    response = client.post("/api/v1/projects", json={"name": "p", "model_settings": model})
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]["message"]
    assert client.get("/api/v1/projects").json()["data"] == []


@pytest.mark.parametrize("model", GOOD_MODEL_SETTINGS)
def test_good_project_model_settings_are_kept(client: TestClient, model: dict[str, object]) -> None:
    created = client.post("/api/v1/projects", json={"name": "p", "model_settings": model})
    assert created.status_code == 201, created.text
    assert created.json()["model_settings"] == model


def test_a_project_of_several_classes_trains_one_output_per_class(client: TestClient) -> None:
    classes = {"name": "p", "class_names": ["polyp", "instrument"]}
    for count, status in ((1, 422), (3, 422), (2, 201)):
        model_settings = {"num_classes": count}
        response = client.post(
            "/api/v1/projects", json={**classes, "model_settings": model_settings}
        )
        assert response.status_code == status, response.text


def test_round_settings_override_the_projects_and_are_checked_together(
    client: TestClient,
) -> None:
    project = labeled_project(client, model_settings={"steps": 50, "human_share": 0.5})
    base = f"/api/v1/projects/{project['id']}"
    # The project's steps stay; the round's share replaces the project's.
    started = client.post(f"{base}/rounds", json={"model": {"human_share": 0.25}})
    assert started.status_code == 201, started.text
    assert started.json()["settings"]["model"] == {"human_share": 0.25}


# (arch, encoder, input_size) the request check and the worker's build must judge alike.
NETWORKS = [
    ("Unet", "resnet18", 256),
    ("DPT", "resnet18", 256),
    ("DPT", "tu-vit_tiny_patch16_224", 256),  # a plain ViT takes its own size only
    ("DPT", "tu-vit_tiny_patch16_224", 224),
    ("Unet", "tu-swin_tiny_patch4_window7_224", 256),
    ("Unet", "tu-swin_tiny_patch4_window7_224", 224),
    ("PAN", "densenet121", 256),
    ("UnetPlusPlus", "mit_b0", 256),
    ("DeepLabV3Plus", "mit_b0", 256),
    ("FPN", "tu-vit_tiny_patch16_224", 256),
]


@pytest.mark.parametrize(("arch", "encoder", "input_size"), NETWORKS)
def test_the_request_check_refuses_what_the_worker_cannot_build_or_run(
    arch: str, encoder: str, input_size: int
) -> None:
    config = ModelConfig(arch=arch, encoder=encoder, input_size=input_size)
    try:
        model = create_architecture(config).eval()
    except ConfigError as built:
        with pytest.raises(ConfigError) as checked:
            check_architecture(config)
        assert str(checked.value) == str(built)
        return
    try:
        with torch.no_grad():
            model(torch.rand(1, 3, input_size, input_size))
    except (AssertionError, ValueError, RuntimeError) as ran:
        with pytest.raises(ConfigError) as checked:
            check_architecture(config)
        assert str(checked.value).endswith(f"cannot take {input_size}x{input_size} images: {ran}")
    else:
        check_architecture(config)


def test_the_network_check_builds_nothing_for_real() -> None:
    # a real build of this encoder takes seconds and gigabytes
    config = ModelConfig(arch="Unet", encoder="tu-convnext_xxlarge")
    started = time.perf_counter()
    check_architecture(config)
    assert time.perf_counter() - started < 5.0
