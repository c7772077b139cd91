"""What the review page needs from the API, without a browser: the page and its modules are
served (and every import resolves), and the numbers the screens show are in the answers."""

from __future__ import annotations

import io
import json
import re

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from app.runtime import Runtime
from tests.browser import FRONTEND
from tests.image_fixtures import array_file
from tests.review_world import make_round_with_candidates, truth_mask
from tests.uploads import create_project, png_bytes, real_image, upload

IMPORT = re.compile(r"""(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s+["']([^"']+)["']""")
DYNAMIC_IMPORT = re.compile(r"""import\(\s*["']([^"']+)["']\s*\)""")


def import_map() -> dict[str, str]:
    html = (FRONTEND / "index.html").read_text()
    match = re.search(r'<script type="importmap">(.*?)</script>', html, re.S)
    assert match, "index.html has no import map"
    imports: dict[str, str] = json.loads(match.group(1))["imports"]
    return imports


def test_the_page_is_served_at_the_root(anon_client: TestClient) -> None:
    page = anon_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/main.js">' in page.text
    assert page.headers["cache-control"] == "no-cache"
    module = anon_client.get("/static/js/main.js")
    assert module.status_code == 200 and "javascript" in module.headers["content-type"]
    assert module.headers["cache-control"] == "no-cache"
    for url in import_map().values():
        library = anon_client.get(url)
        assert library.status_code == 200 and "javascript" in library.headers["content-type"]


def test_nothing_outside_the_frontend_folder_is_served(anon_client: TestClient) -> None:
    for path in ("/static/../app/settings.py", "/static/%2e%2e/app/settings.py", "/static/nope.js"):
        assert anon_client.get(path).status_code == 404


def test_every_module_import_resolves() -> None:
    bare = import_map()
    modules = sorted((FRONTEND / "js").rglob("*.js"))
    assert len(modules) >= 10
    for module in modules:
        source = module.read_text()
        for target in IMPORT.findall(source) + DYNAMIC_IMPORT.findall(source):
            if target.startswith("."):
                assert (module.parent / target).resolve().is_file(), f"{module}: {target}"
            else:
                assert target in bare, f"{module} imports {target!r}, not in the import map"


def test_vendored_libraries_carry_their_licences() -> None:
    vendor = FRONTEND / "vendor"
    for name in ("preact.js", "preact-hooks.js", "htm.js", "preact.LICENSE", "htm.LICENSE"):
        assert (vendor / name).is_file(), name
    assert "MIT License" in (vendor / "preact.LICENSE").read_text()
    assert "Apache License" in (vendor / "htm.LICENSE").read_text()


def test_image_listing_says_where_each_image_stands(client: TestClient, runtime: Runtime) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    base = f"/api/v1/projects/{project_id}"
    ids, masks = [], []
    for index in range(4):
        image_path, mask_path = real_image("kvasir_seg", 20 + index)
        ids.append(int(upload(client, project_id, image_path)["image"]["id"]))  # type: ignore[index]
        masks.append(truth_mask(mask_path))
    human = client.post(
        f"{base}/images/{ids[0]}/labels", files={"file": ("m.png", png_bytes(masks[0] * 255))}
    )
    assert human.status_code == 201
    made = make_round_with_candidates(runtime, project_id, ids[1:3], [0.9, 0.5], masks[1:3])
    assert client.post(f"{base}/candidates/{made.candidate_ids[0]}/accept").status_code == 200

    listed = {i["id"]: i for i in client.get(f"{base}/images").json()["data"]}
    states = [(listed[i]["label_source"], listed[i]["pending_review"]) for i in ids]
    assert states == [("human", False), ("machine", False), (None, True), (None, False)]
    one = client.get(f"{base}/images/{ids[2]}").json()
    assert (one["label_source"], one["pending_review"]) == (None, True)


def test_statistics_count_candidates_per_score_band(client: TestClient, runtime: Runtime) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    ids, masks = [], []
    for index in range(3):
        image_path, mask_path = real_image("kvasir_seg", 30 + index)
        ids.append(int(upload(client, project_id, image_path)["image"]["id"]))  # type: ignore[index]
        masks.append(truth_mask(mask_path))
    made = make_round_with_candidates(runtime, project_id, ids, [0.95, 0.91, 0.35], masks)
    base = f"/api/v1/projects/{project_id}"
    assert client.post(f"{base}/candidates/{made.candidate_ids[0]}/accept").status_code == 200
    bands = client.get(f"{base}/rounds/1/statistics").json()["score_bands"]
    assert bands["0.9-1.0"] == {
        "candidates": 2,
        "decided": 1,
        "accepted": 1,
        "acceptance_rate": 1.0,
    }
    assert bands["0.3-0.4"]["candidates"] == 1 and bands["0.3-0.4"]["acceptance_rate"] is None


def test_display_renders_images_browsers_cannot_decode(client: TestClient) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    pixels = np.linspace(1000, 50000, 30 * 40).reshape(30, 40).astype(np.uint16)
    stored = client.post(
        f"/api/v1/projects/{project_id}/images",
        files={"file": ("scan.tif", array_file(pixels, "TIFF"))},
    )
    assert stored.status_code == 201, stored.text
    image_id = stored.json()["image"]["id"]
    shown = client.get(f"/api/v1/projects/{project_id}/images/{image_id}/display")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    with PILImage.open(io.BytesIO(shown.content)) as png:
        assert (png.mode, png.size) == ("RGB", (40, 30))
        assert np.asarray(png).max() == 255  # windowed, not truncated to the low byte
