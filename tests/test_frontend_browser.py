"""The review page in Chromium against a real server (`samdsk run`: the API and a worker on
SQLite, the filesystem broker and local files): log in, upload real Kvasir-SEG images and
human masks by drag and drop, run a tiny round, review with the keyboard (accept, reject with
a reason, edit with the brush), accept the rest in bulk, read the dashboard; every decision
is checked through the API. Screenshots of each screen go to artifacts/frontend/."""

from __future__ import annotations

import base64
import io
import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from app.db import session_scope
from app.models import Round, RoundStatus, utcnow
from app.runtime import build_runtime
from samdsk.model.checkpoint import load_checkpoint
from tests.browser import chromium, require_chromium, screenshot_path
from tests.live_server import ADMIN_PASSWORD, LiveServer
from tests.review_world import make_round_with_candidates, truth_mask
from tests.uploads import png_bytes, real_image

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LABELED, UNLABELED = 3, 5
FIRST_IMAGE = 40  # the Kvasir-SEG images the round end-to-end test uses
# A tiny CPU budget: the point is the page, not the model's quality.
TINY_MODEL = {"encoder": "resnet18", "input_size": 64, "steps": 6, "batch_size": 2, "val_every": 3}
KNOWLEDGE = {"polyp": {"min_regions": 1, "max_regions": 3, "min_area": 0.001, "max_area": 0.9}}
ROUND_TIMEOUT_MS = 300_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_chromium()  # before paying for a server
    live = LiveServer(tmp_path_factory.mktemp("browser") / "var")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def new_project(api: httpx.Client, name: str) -> int:
    body = {"name": name, "class_names": ["polyp"], "knowledge": KNOWLEDGE}
    answer = api.post("/projects", json={**body, "model_settings": TINY_MODEL})
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def open_page(browser: Any, server: LiveServer, username: str, password: str) -> Any:
    """A fresh page, logged in through the login screen."""
    page = browser.new_page(viewport={"width": 1280, "height": 820})
    page.goto(f"{server.base}/")
    page.wait_for_selector("input[name=username]")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector(".projects-page[data-loaded=true]")
    return page


def drop_files(page: Any, zone: str, files: list[tuple[str, bytes, str]]) -> None:
    """Drag files onto a drop zone as a user would from the file manager."""
    payload = [
        {"name": name, "data": base64.b64encode(data).decode(), "type": kind}
        for name, data, kind in files
    ]
    page.evaluate(
        """([zone, files]) => {
          const transfer = new DataTransfer();
          for (const f of files) {
            const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], f.name, { type: f.type }));
          }
          const target = document.querySelector(`[data-drop=${zone}]`);
          for (const type of ["dragenter", "dragover", "drop"]) {
            target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true,
                                                       dataTransfer: transfer }));
          }
        }""",
        [zone, payload],
    )


def record_progress(page: Any) -> None:
    """Keep every value the upload progress bar shows, to see it move between 0 and 100."""
    page.evaluate(
        """() => {
          window.progressSeen = [];
          new MutationObserver(() => {
            const bar = document.querySelector('.upload-report [role=progressbar]');
            if (bar) window.progressSeen.push(Number(bar.getAttribute('aria-valuenow')));
          }).observe(document.body, { subtree: true, childList: true, attributes: true });
        }"""
    )


def fits_a_phone(page: Any, server: LiveServer, project_id: int, views: list[str]) -> None:
    """On a phone (390 px wide) no screen is wider than it, and the viewer keeps the width."""
    page.set_viewport_size({"width": 390, "height": 844})
    for view in views:
        page.goto(f"{server.base}/#/projects/{project_id}/{view}".rstrip("/"))
        page.wait_for_selector("main section")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # what the answers draw
        wide = page.evaluate("document.documentElement.scrollWidth")
        culprits = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
              .filter((e) => e.getBoundingClientRect().right > 391 && !e.closest('table'))
              .map((e) => [e.tagName, e.className, Math.round(e.getBoundingClientRect().right)])
              .slice(0, 8)"""
        )
        assert wide <= 390, (view, wide, culprits)
        if page.locator("#viewer").is_visible():  # hidden while nothing awaits review
            assert page.locator("#viewer").bounding_box()["width"] > 300, view
    page.screenshot(path=screenshot_path(f"phone-{views[-1] or 'project'}"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 820})


def wait_drawn_change(page: Any, shown: str | None) -> str:
    page.wait_for_function(
        "shown => (document.querySelector('#viewer').dataset.drawn ?? null) !== shown", arg=shown
    )
    return str(page.get_attribute("#viewer", "data-drawn"))


def candidate(api: httpx.Client, project_id: int, candidate_id: str | int) -> dict[str, Any]:
    body: dict[str, Any] = api.get(f"/projects/{project_id}/candidates/{candidate_id}").json()
    return body


def test_login_refuses_a_wrong_password_in_words(browser: Any, server: LiveServer) -> None:
    page = browser.new_page()
    page.goto(f"{server.base}/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert page.inner_text(".errors").strip().startswith("wrong username or password")
    page.screenshot(path=screenshot_path("login-error"))
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector(".projects-page[data-loaded=true]")
    assert page.inner_text(".user") == "admin"
    page.close()


def test_upload_round_review_and_dashboard(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    project_id = new_project(api, "polyps")
    page = open_page(browser, server, "admin", ADMIN_PASSWORD)
    page.screenshot(path=screenshot_path("projects"))
    pairs = [real_image("kvasir_seg", FIRST_IMAGE + i) for i in range(LABELED + UNLABELED)]

    upload_images_and_masks(page, server, project_id, pairs)
    run_round(page, server, project_id)
    review_with_the_keyboard(page, server, api, project_id)
    read_the_dashboard(page, server, api, project_id)
    fits_a_phone(page, server, project_id, ["review", "dashboard"])
    page.close()


def upload_images_and_masks(
    page: Any, server: LiveServer, project_id: int, pairs: list[tuple[Path, Path]]
) -> None:
    page.goto(f"{server.base}/#/projects/{project_id}/images")
    page.wait_for_selector("[data-drop=images]")
    record_progress(page)
    files = [(p.name, p.read_bytes(), "image/jpeg") for p, _ in pairs]
    drop_files(page, "images", [*files, ("notes.png", b"not an image at all", "image/png")])
    page.wait_for_selector(".upload-summary:has-text('Finished')")
    assert page.inner_text(".upload-summary") == "Finished: 9 of 9 sent, 1 refused."
    refused = page.inner_text(".upload-results li >> nth=0")  # refusals come first
    assert refused.startswith("notes.png: ") and len(refused) > len("notes.png: ") + 10
    assert "notes.png" not in refused.removeprefix("notes.png: ")  # named once
    seen = page.evaluate("window.progressSeen")
    assert seen[-1] == 100 and any(0 < value < 100 for value in seen), seen
    page.wait_for_function(f"document.querySelectorAll('tr[data-image]').length === {len(pairs)}")

    masks = [(m.name, m.read_bytes(), "image/png") for _, m in pairs[:LABELED]]
    drop_files(page, "masks", masks)
    page.wait_for_selector(f".upload-summary:has-text('Finished: {LABELED} of {LABELED} sent')")
    page.wait_for_function("document.querySelectorAll('.badge.status-human-label').length === 3")
    page.wait_for_selector("img.thumb")  # thumbnails appear once the worker made them


def run_round(page: Any, server: LiveServer, project_id: int) -> None:
    page.goto(f"{server.base}/#/projects/{project_id}")
    page.wait_for_selector("dd.labeled:has-text('3 of 8')")
    page.click("button:has-text('Start round')")
    page.wait_for_selector(".round[data-round='1']")
    page.wait_for_selector(".round[data-status=succeeded]", timeout=ROUND_TIMEOUT_MS)
    assert page.inner_text(".round-percent") == "100%"
    assert "5 candidates" in page.inner_text(".round")
    page.wait_for_selector(".models tr[data-model='1']")  # the round's model, to download
    with page.expect_download() as checkpoint:
        page.click(".models tr[data-model='1'] button:has-text('Download')")
    assert checkpoint.value.suggested_filename == f"project-{project_id}-model-1.pt"
    _, config = load_checkpoint(Path(checkpoint.value.path()))
    assert config.num_classes == 1
    page.goto(f"{server.base}/#/projects/{project_id}/images")
    page.wait_for_function("document.querySelectorAll('.badge.status-pending-review').length === 5")


def review_with_the_keyboard(
    page: Any, server: LiveServer, api: httpx.Client, project_id: int
) -> None:
    page.goto(f"{server.base}/#/projects/{project_id}/review")
    first = wait_drawn_change(page, None)
    assert page.inner_text(".pending-count") == str(UNLABELED)
    scores = [float(s) for s in page.locator(".queue-list li > span:first-child").all_inner_texts()]
    assert scores == sorted(scores, reverse=True) and len(scores) == UNLABELED
    page.screenshot(path=screenshot_path("review"))
    check_viewer_controls(page)

    page.keyboard.press("a")  # accept: the next candidate is on screen at once
    second = wait_drawn_change(page, first)
    page.keyboard.press("r")
    page.fill("input[name=reason]", "covers the stalk, not the polyp")
    page.keyboard.press("Enter")
    third = wait_drawn_change(page, second)
    edit_with_the_brush(page)
    fourth = wait_drawn_change(page, third)

    page.wait_for_function("() => !document.body.innerText.includes('sending…')")
    assert candidate(api, project_id, first)["status"] == "accepted"
    rejected = candidate(api, project_id, second)
    assert (rejected["status"], rejected["reason"]) == (
        "rejected",
        "covers the stalk, not the polyp",
    )
    edited = candidate(api, project_id, third)
    assert edited["status"] == "edited" and edited["edit_dice"] < 1.0
    label = api.get(f"/projects/{project_id}/images/{edited['image_id']}/labels/current").json()
    assert (
        label["source"] == "edited" and label["foreground_fraction"] > edited["foreground_fraction"]
    )

    # Someone else decides the candidate on screen: the page says so, in the API's words.
    assert api.post("/users", json={"username": "rosa", "password": "rosa reviews"}).is_success
    assert api.put(f"/projects/{project_id}/members/rosa", json={"role": "reviewer"}).is_success
    rosa = {"Authorization": f"Bearer {server.token('rosa', 'rosa reviews')}"}
    accepted = api.post(f"/projects/{project_id}/candidates/{fourth}/accept", headers=rosa)
    assert accepted.status_code == 200, accepted.text
    page.keyboard.press("a")
    page.wait_for_selector(f".errors .error:has-text('Candidate {fourth}')")
    assert "already decided" in page.inner_text(".errors")
    page.click(".errors button:has-text('dismiss')")

    accept_the_rest_in_bulk(page, api, project_id)


def check_viewer_controls(page: Any) -> None:
    fill = page.locator(".overlay-fill")
    page.keyboard.press("o")
    assert fill.evaluate("el => getComputedStyle(el).visibility") == "hidden"
    page.keyboard.press("o")
    assert fill.evaluate("el => getComputedStyle(el).visibility") == "visible"
    page.fill("input[name=opacity]", "0.8")
    assert fill.evaluate("el => getComputedStyle(el).opacity") == "0.8"
    scale = "() => new DOMMatrix(getComputedStyle(document.querySelector('.stack')).transform).a"
    fitted = page.evaluate(scale)
    page.keyboard.press("+")
    assert page.evaluate(scale) == pytest.approx(fitted * 1.25, rel=1e-4)
    page.keyboard.press("0")
    assert page.evaluate(scale) == pytest.approx(fitted, rel=1e-4)


def fill_alpha_at(page: Any, x: float, y: float) -> int:
    """Alpha of the mask fill under screen point (x, y) of the viewer: 0 where no mask."""
    return int(
        page.evaluate(
            """([x, y]) => {
              const canvas = document.querySelector('.overlay-fill');
              const box = canvas.getBoundingClientRect();
              const ix = Math.floor((x - box.left) * canvas.width / box.width);
              const iy = Math.floor((y - box.top) * canvas.height / box.height);
              return canvas.getContext('2d').getImageData(ix, iy, 1, 1).data[3];
            }""",
            [x, y],
        )
    )


def edit_with_the_brush(page: Any) -> None:
    page.keyboard.press("e")
    page.wait_for_selector(".edit-tools")
    box = page.locator(".overlay-fill").bounding_box()
    # A stroke along the top of the image, where Kvasir-SEG masks rarely reach.
    start = (box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.06)
    end = (box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.06)
    page.fill("input[name=brush-size]", "40")
    before = fill_alpha_at(page, *start)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=12)
    page.mouse.up()
    assert fill_alpha_at(page, *start) == 255
    page.screenshot(path=screenshot_path("review-edit"))
    page.keyboard.press("Control+z")
    assert fill_alpha_at(page, *start) == before
    page.keyboard.press("Control+y")
    assert fill_alpha_at(page, *start) == 255
    page.keyboard.press("f")  # fill holes: a step of its own
    page.keyboard.press("Enter")  # save as the corrected label


def accept_the_rest_in_bulk(page: Any, api: httpx.Client, project_id: int) -> None:
    page.fill("input[name=bulk-threshold]", "0")
    page.click("button:has-text('Accept all above…')")
    dialog = page.wait_for_selector(".dialog")
    assert re.search(
        r"Accept 1 pending candidate with a match score of at least 0\b", dialog.inner_text()
    )
    page.screenshot(path=screenshot_path("review-bulk-confirm"))
    page.click(".dialog button:has-text('Accept 1')")
    page.wait_for_selector(".notice:has-text('Accepted 1 candidate scoring at least 0.')")
    page.wait_for_selector(".queue-end")
    assert page.inner_text(".pending-count") == "0"
    statistics = api.get(f"/projects/{project_id}/rounds/1/statistics").json()
    decided = (statistics["accepted"], statistics["edited"], statistics["rejected"])
    assert decided == (3, 1, 1) and statistics["pending"] == 0


def read_the_dashboard(page: Any, server: LiveServer, api: httpx.Client, project_id: int) -> None:
    page.goto(f"{server.base}/#/projects/{project_id}/dashboard")
    page.wait_for_selector(".rounds-table tr[data-round='1']")
    bars = page.locator("[data-chart=histogram] rect.bar")
    counts = [float(v) for v in bars.evaluate_all("els => els.map(e => e.dataset.value)")]
    assert sum(counts) == UNLABELED
    row = page.locator(".rounds-table tr[data-round='1'] td").all_inner_texts()
    # Round, status, candidates, pending, accepted, edited, rejected, superseded, acceptance
    # (3 of 5 as they were).
    assert row[:9] == ["1", "succeeded", "5", "0", "3", "1", "1", "0", "60%"]
    assert row[11] == str(LABELED)
    labeled = page.locator("[data-chart=labeled] circle.dot")
    values = labeled.evaluate_all("els => els.map(e => Number(e.dataset.value))")
    assert values == [LABELED, LABELED + 4]  # at the start of round 1, and now
    rounds = api.get(f"/projects/{project_id}/rounds").json()
    dice = [r["metrics"]["model"]["val_dice"] for r in rounds]
    shown = page.locator("[data-chart=dice] circle.dot").count()
    assert shown == sum(isinstance(d, float) for d in dice)  # none below 5 human labels
    page.screenshot(path=screenshot_path("dashboard"), full_page=True)
    page.goto(f"{server.base}/#/projects/{project_id}/images")
    page.wait_for_function("document.querySelectorAll('.badge.status-machine-label').length === 3")
    for status, count in (("human-label", 3), ("edited-label", 1), ("none", 1)):
        assert page.locator(f".badge.status-{status}").count() == count
    page.wait_for_function(
        f"document.querySelectorAll('img.thumb').length === {LABELED + UNLABELED}"
    )
    page.screenshot(path=screenshot_path("images"))


def test_an_admin_cancels_a_running_round_and_a_viewer_cannot_start_one(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    project_id = new_project(api, "cancel")
    for index in range(3):
        image, mask = real_image("kvasir_seg", FIRST_IMAGE + index)
        stored = api.post(
            f"/projects/{project_id}/images", files={"file": (image.name, image.read_bytes())}
        ).json()
        labels = f"/projects/{project_id}/images/{stored['image']['id']}/labels"
        assert api.post(labels, files={"file": ("m.png", mask.read_bytes())}).status_code == 201
    page = open_page(browser, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.base}/#/projects/{project_id}")
    # before a round starts the page says which proposals this server makes, offline ones
    # as a warning
    page.wait_for_selector(".server-sources.warning")
    assert "offline" in page.inner_text(".server-sources")
    assert "no SAM checkpoint configured" in page.inner_text(".server-sources")
    assert "not SAM" in page.inner_text(".server-sources")
    page.click("summary")
    page.fill("textarea[name=round-settings]", "{not json")
    page.click("button:has-text('Start round')")
    assert "not a valid JSON object" in page.inner_text(".project")
    page.fill("textarea[name=round-settings]", "[1, 2]")
    page.click("button:has-text('Start round')")
    assert "give an object" in page.inner_text(".project")
    page.fill("textarea[name=round-settings]", '{"model": {"steps": 3000}}')
    # the project names no perturbation, so it trains under "auto" and the box starts ticked
    assert page.is_checked("input[name=peer-maps]")
    page.click("button:has-text('Start round')")
    page.wait_for_selector(".round-stage:has-text('train')", timeout=120_000)
    # once the worker fixed the round's settings, its card names its sources
    page.wait_for_selector(
        ".round-sources:has-text('offline classical proposals')", timeout=120_000
    )
    assert "random initialisation" in page.inner_text(".round-sources")
    started = api.get(f"/projects/{project_id}/rounds/1").json()["settings"]
    assert started["peer_maps"] is True
    assert started["model"] == {"steps": 3000, "machine_augment": "auto"}
    page.wait_for_selector(".round-eta", timeout=120_000)  # once some progress is made
    assert re.fullmatch(r"\d+ h \d+ min|(\d+ min )?\d+ s", page.inner_text(".round-eta"))
    page.screenshot(path=screenshot_path("project-round"))
    page.click("button:has-text('Cancel round 1')")
    page.wait_for_selector(".round[data-status=cancelled]", timeout=120_000)
    page.close()

    assert api.post(
        "/users", json={"username": "vera", "password": "a viewer's password"}
    ).is_success
    member = api.put(f"/projects/{project_id}/members/vera", json={"role": "viewer"})
    assert member.status_code == 200, member.text
    viewer = open_page(browser, server, "vera", "a viewer's password")
    viewer.goto(f"{server.base}/#/projects/{project_id}")
    viewer.wait_for_selector(".round[data-status=cancelled]")  # drawn with the project's my_role
    assert viewer.locator("button:has-text('Start round')").count() == 0
    assert viewer.locator("button:has-text('Cancel')").count() == 0
    viewer.wait_for_selector("tr[data-member=vera] .member-role:has-text('viewer')")
    assert viewer.locator(".members select, .members button, .members form").count() == 0
    viewer.goto(f"{server.base}/#/projects/{project_id}/images")
    viewer.wait_for_selector(".role-note:has-text('needs the annotator role (yours: viewer)')")
    assert viewer.locator("[data-drop]").count() == 0
    viewer.close()


NARROW = 420  # px: a phone held upright


def test_long_names_wrap_instead_of_widening_the_page(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    """Names are whatever users type: the longest the API takes, without a space, stay on
    screen."""
    long_class = "c" * 100
    body = {"name": "n" * 200, "description": "d" * 5000, "class_names": [long_class, "polyp"]}
    answer = api.post("/projects", json=body)
    assert answer.status_code == 201, answer.text
    project_id = int(answer.json()["id"])
    image, mask = real_image("kvasir_seg", FIRST_IMAGE)
    stored = api.post(
        f"/projects/{project_id}/images", files={"file": ("i" * 240 + ".jpg", image.read_bytes())}
    )
    runtime = build_runtime(server.settings)  # a candidate without paying for a round
    try:
        image_id = int(stored.json()["image"]["id"])
        make_round_with_candidates(runtime, project_id, [image_id], [0.9], [truth_mask(mask)])
    finally:
        runtime.close()

    page = open_page(browser, server, "admin", ADMIN_PASSWORD)
    screens = {
        "projects": ("", ".projects-page[data-loaded=true]"),
        "project": (f"#/projects/{project_id}", "section.project"),
        "images": (f"#/projects/{project_id}/images", "tr[data-image]"),
        "review-edit": (f"#/projects/{project_id}/review", "#viewer[data-drawn]"),
        "dashboard": (f"#/projects/{project_id}/dashboard", ".rounds-table tr[data-round='1']"),
    }
    widths = {}
    for name, (route, ready) in screens.items():
        page.goto(f"{server.base}/{route}")
        page.wait_for_selector(ready)
        if name == "review-edit":
            page.keyboard.press("e")  # the editor names the classes
            page.wait_for_selector(".edit-tools")
        widths[name] = page.evaluate(
            "Math.max(document.body.scrollWidth, document.documentElement.scrollWidth)"
        )
        page.screenshot(path=screenshot_path(f"long-names-{name}"))
    assert {name: width for name, width in widths.items() if width > 1280} == {}
    page.set_viewport_size({"width": NARROW, "height": 800})  # the header wraps too
    for name in ("projects", "project"):
        route, ready = screens[name]
        page.goto(f"{server.base}/{route}")
        page.wait_for_selector(ready)
        width = page.evaluate(
            "Math.max(document.body.scrollWidth, document.documentElement.scrollWidth)"
        )
        page.screenshot(path=screenshot_path(f"narrow-{name}"))
        assert width <= NARROW, (name, width)
    page.close()


def paint_stroke(page: Any, y_fraction: float, *, release: bool = True) -> None:
    box = page.locator(".overlay-fill").bounding_box()
    y = box["y"] + box["height"] * y_fraction
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=6)
    if release:
        page.mouse.up()


def test_strokes_survive_a_conflict_and_are_not_dropped_unasked(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    project_id = new_project(api, "conflicts")
    image_ids, masks, image_names = [], [], []
    for index in range(2):
        image, mask = real_image("kvasir_seg", FIRST_IMAGE + index)
        image_names.append(image.name)
        stored = api.post(
            f"/projects/{project_id}/images", files={"file": (image.name, image.read_bytes())}
        )
        image_ids.append(int(stored.json()["image"]["id"]))
        masks.append(truth_mask(mask))
    runtime = build_runtime(server.settings)  # candidates without paying for a round
    try:
        made = make_round_with_candidates(runtime, project_id, image_ids, [0.9, 0.8], masks)
    finally:
        runtime.close()
    page = open_page(browser, server, "admin", ADMIN_PASSWORD)
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    page.goto(f"{server.base}/#/projects/424242/review")  # no such project: its error only
    page.wait_for_selector(".errors:has-text('project 424242')")
    assert page.locator(".errors p.error").count() == 1 and page.locator(".pending").count() == 0
    page.goto(f"{server.base}/#/projects/{project_id}/review")
    page.wait_for_selector("#viewer[data-drawn]")

    # Esc with strokes asks first; Esc on the question keeps them
    page.keyboard.press("e")
    page.wait_for_selector(".edit-tools")
    page.fill("input[name=brush-size]", "30")
    paint_stroke(page, 0.08)
    page.keyboard.press("Escape")
    page.wait_for_selector(".dialog:has-text('Discard your changes to this mask?')")
    page.keyboard.press("Escape")
    page.wait_for_function("!document.querySelector('.dialog')")  # drawn on the next render
    assert page.locator(".edit-tools").count() == 1
    # the edit ends in the middle of a stroke: the rest of the drag paints nothing, fails nothing
    paint_stroke(page, 0.12, release=False)
    page.keyboard.press("Escape")
    page.wait_for_selector(".dialog")
    page.keyboard.press("Enter")  # Discard
    page.wait_for_selector("button:has-text('Accept (A)')")
    box = page.locator(".overlay-fill").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5, steps=4)
    page.mouse.up()
    assert failures == []

    # decided elsewhere while being edited: the strokes can still become a label
    page.keyboard.press("e")
    page.wait_for_selector(".edit-tools")
    paint_stroke(page, 0.08)
    first = made.candidate_ids[0]
    assert api.post(f"/projects/{project_id}/candidates/{first}/accept").status_code == 200
    page.keyboard.press("Enter")
    page.wait_for_selector(f".errors:has-text('candidate {first} was already decided')")
    page.click(f"button:has-text('Save them as a new label of image {image_ids[0]}')")
    page.wait_for_selector(f".notice:has-text('label version 2 of image {image_ids[0]}')")
    labels = api.get(f"/projects/{project_id}/images/{image_ids[0]}/labels").json()
    assert [(label["version"], label["source"]) for label in labels] == [
        (1, "machine"),
        (2, "human"),
    ]
    assert labels[1]["foreground_fraction"] > labels[0]["foreground_fraction"]

    # a mistaken accept taken back with U: pending again, its label version retracted
    second = made.candidate_ids[1]
    page.wait_for_selector(f"#viewer[data-drawn='{second}']")  # decided once it is seen
    page.keyboard.press("a")
    page.wait_for_selector(".queue-end")
    deadline = time.monotonic() + 20
    while candidate(api, project_id, second)["status"] != "accepted":  # the accept is sent
        assert time.monotonic() < deadline, "the accept did not reach the API"
        time.sleep(0.2)
    page.keyboard.press("u")
    page.wait_for_selector(f".notice:has-text('Candidate {second} is pending again')")
    assert candidate(api, project_id, second)["status"] == "pending"
    history = api.get(f"/projects/{project_id}/images/{image_ids[1]}/labels").json()
    assert [label["retracted_by"] for label in history] == ["admin"]

    # the images page finds the image left without a label, and one by name
    page.goto(f"{server.base}/#/projects/{project_id}/images")
    page.wait_for_selector(".image-count:has-text('2 images')")
    page.select_option("select[name=image-status]", "none")
    page.wait_for_selector(".image-count:has-text('1 image.')")
    assert page.locator("tr[data-image]").evaluate_all(
        "rows => rows.map(r => r.dataset.image)"
    ) == [str(image_ids[1])]
    page.select_option("select[name=image-status]", "")
    page.fill("input[name=image-filename]", image_names[0][1:-4].upper())
    page.click("button:has-text('Find')")
    page.wait_for_selector(".image-count:has-text('1 image.')")
    page.wait_for_selector(f"tr[data-image='{image_ids[0]}']")

    # each image's own page: its versions, any of them drawn, a new human label
    page.click(f"tr[data-image='{image_ids[0]}'] a >> nth=0")
    page.wait_for_selector(f"section.image-page[data-image='{image_ids[0]}']")
    page.wait_for_selector(f"#viewer[data-showing='{image_ids[0]}-v2']")
    states = page.locator(".versions td.state").all_inner_texts()
    assert states == ["current", "earlier"]
    page.click(".versions tr[data-version='1']")
    page.wait_for_selector(f"#viewer[data-showing='{image_ids[0]}-v1']")
    page.goto(f"{server.base}/#/projects/{project_id}/images/{image_ids[1]}")
    page.wait_for_selector(".versions td.state:has-text('retracted by admin')")
    assert page.inner_text(".image-label") == "none"
    page.set_input_files(
        "input[name=label-file]",
        files=[{"name": "m.png", "mimeType": "image/png", "buffer": png_bytes(masks[1])}],
    )
    page.wait_for_selector(".notice:has-text('Saved as label version 2.')")
    page.wait_for_selector(f"#viewer[data-showing='{image_ids[1]}-v2']")
    assert page.inner_text(".image-label").startswith("version 2 (human, by admin)")
    assert failures == []
    page.close()

    # an annotator sees no decisions it could not make
    assert api.post("/users", json={"username": "anna", "password": "an annotator's pw"}).is_success
    assert api.put(f"/projects/{project_id}/members/anna", json={"role": "annotator"}).is_success
    annotator = open_page(browser, server, "anna", "an annotator's pw")
    annotator.goto(f"{server.base}/#/projects/{project_id}/review")
    annotator.wait_for_selector(".role-note:has-text('yours: annotator')")
    assert annotator.locator("button:has-text('Accept (A)')").count() == 0
    assert annotator.locator("button:has-text('Accept all above…')").count() == 0
    annotator.keyboard.press("a")
    annotator.wait_for_selector(".errors:has-text('needs the reviewer role')")
    # (the human label made above superseded it; the annotator decided nothing)
    assert candidate(api, project_id, made.candidate_ids[1])["decided_by"] is None
    annotator.close()


def members(api: httpx.Client, project_id: int) -> dict[str, str]:
    return {m["username"]: m["role"] for m in api.get(f"/projects/{project_id}/members").json()}


def test_a_project_made_in_the_browser_with_its_members_and_exports(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    assert api.post("/users", json={"username": "rita", "password": "a reviewer's pw"}).is_success
    page = open_page(browser, server, "admin", ADMIN_PASSWORD)
    page.click("summary:has-text('New project')")
    page.fill("input[name=project-name]", "lesions")
    page.fill("input[name=project-classes]", "polyp")
    page.fill("input[name=project-minRegions]", "1")
    page.fill("input[name=project-maxRegions]", "3")
    page.fill("input[name=project-minArea]", "0.5")
    page.fill("input[name=project-maxArea]", "60")
    page.click("button:has-text('Create project')")
    page.wait_for_selector("section.project h1:has-text('lesions')")
    project_id = int(page.evaluate("location.hash").split("/")[2])
    made = api.get(f"/projects/{project_id}").json()
    assert made["knowledge"] == {
        "polyp": {"min_regions": 1, "max_regions": 3, "min_area": 0.005, "max_area": 0.6}
    }
    page.goto(f"{server.base}/#/projects")
    page.click("summary:has-text('New project')")
    page.fill("input[name=project-name]", "LESIONS ")
    page.fill("input[name=project-classes]", "polyp")
    page.click("button:has-text('Create project')")
    page.wait_for_selector(".errors:has-text('already exists')")  # the API's 409, as it is

    page.goto(f"{server.base}/#/projects/{project_id}")
    page.wait_for_selector(
        ".knowledge:has-text('polyp: 1 to 3 regions, each 0.5 to 60% of the image')"
    )
    polyp = "form.settings tr[data-class=polyp]"
    page.fill(f"{polyp} input[name=knowledge-maxRegions]", "2")
    page.fill("input[name=settings-auto-accept]", "0.97")
    page.click("button:has-text('Save settings')")
    page.wait_for_selector(".settings .notice:has-text('Saved (auto accept threshold, knowledge)')")
    page.wait_for_selector(".knowledge:has-text('polyp: 1 to 2 regions')")
    page.wait_for_selector(".auto-accept:has-text('match score 0.97 and above')")
    page.screenshot(path=screenshot_path("project-settings"), full_page=True)
    saved = api.get(f"/projects/{project_id}").json()
    assert saved["knowledge"]["polyp"]["max_regions"] == 2
    assert saved["auto_accept_threshold"] == 0.97
    page.fill(f"{polyp} input[name=knowledge-minRegions]", "3")  # more than the most: the API says
    page.click("button:has-text('Save settings')")
    page.wait_for_selector(".settings .errors:has-text('min_regions must not exceed max_regions')")
    assert api.get(f"/projects/{project_id}").json() == saved

    page.fill("input[name=member-username]", "rita")
    page.select_option("select[name=member-new-role]", "reviewer")
    page.click("button:has-text('Add or change')")
    page.wait_for_selector("tr[data-member=rita]")
    assert members(api, project_id)["rita"] == "reviewer"
    page.select_option("tr[data-member=rita] select", "viewer")
    deadline = time.monotonic() + 20
    while (roles := members(api, project_id)) != {"admin": "admin", "rita": "viewer"}:
        assert time.monotonic() < deadline, roles  # the change is sent in the background
        time.sleep(0.2)
    page.click("tr[data-member=rita] button:has-text('remove')")
    page.wait_for_function("!document.querySelector('tr[data-member=rita]')")
    page.fill("input[name=member-username]", "nobody")
    page.click("button:has-text('Add or change')")
    page.wait_for_selector(".members .errors:has-text('nobody')")

    image, mask = real_image("kvasir_seg", FIRST_IMAGE)
    stored = api.post(
        f"/projects/{project_id}/images", files={"file": (image.name, image.read_bytes())}
    ).json()
    labels = f"/projects/{project_id}/images/{stored['image']['id']}/labels"
    assert api.post(labels, files={"file": ("m.png", mask.read_bytes())}).status_code == 201
    with page.expect_download() as coco:
        page.click("button[data-export=coco]")
    body = Path(coco.value.path()).read_bytes()
    assert coco.value.suggested_filename == f"project-{project_id}-labels-coco.json"
    assert b'"label_source": "human"' in body.replace(b'":"', b'": "')
    with page.expect_download() as masks:
        page.click("button[data-export=masks]")
    assert Path(masks.value.path()).read_bytes()[:2] == b"PK"  # a zip
    page.check("input[name=export-images]")
    page.check("input[name=export-deidentify]")
    with page.expect_download() as anonymous:
        page.click("button[data-export=masks]")
    assert anonymous.value.suggested_filename.endswith("-deidentified.zip")
    with zipfile.ZipFile(anonymous.value.path()) as archive:
        image_id = stored["image"]["id"]
        assert f"images/image-{image_id}.jpg" in archive.namelist()
        assert image.stem.encode() not in archive.read("manifest.csv")
    page.close()


def test_a_coco_data_set_zip_dropped_on_the_images_page_is_imported(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    project_id = new_project(api, "coco import")
    coco: dict[str, Any] = {
        "categories": [{"id": 1, "name": "polyp"}],
        "images": [],
        "annotations": [],
    }
    entries = {}
    for number in (1, 2):
        image, mask = real_image("kvasir_seg", FIRST_IMAGE + number)
        entries[f"images/{image.name}"] = image.read_bytes()
        height, width = truth_mask(mask).shape
        coco["images"].append(
            {"id": number, "file_name": image.name, "width": width, "height": height}
        )
        polygon = [5, 5, width - 5, 5, width - 5, height // 2, 5, height // 2]
        coco["annotations"].append(
            {"id": number, "image_id": number, "category_id": 1, "segmentation": [polygon]}
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("annotations/instances_default.json", json.dumps(coco))
        for name, data in entries.items():
            archive.writestr(name, data)
    page = open_page(browser, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.base}/#/projects/{project_id}/images")
    page.wait_for_selector("[data-drop=datasets]")
    zips = [
        ("set.zip", buffer.getvalue(), "application/zip"),
        ("bad.zip", b"PK no zip", "application/zip"),
    ]
    drop_files(page, "datasets", zips)
    page.wait_for_selector(".upload-summary:has-text('Finished: 2 of 2 sent, 1 refused.')")
    assert page.inner_text(".upload-results .ok") == "set.zip: imported: 2 new images, 2 new labels"
    assert page.inner_text(".upload-results .error").startswith(
        "bad.zip: the upload is not a readable zip"
    )
    page.wait_for_function("document.querySelectorAll('.badge.status-human-label').length === 2")
    page.close()


def test_a_double_click_or_a_held_key_decides_only_the_candidate_on_screen_and_strokes_ask(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    project_id = new_project(api, "careful review")
    image_ids, masks = [], []
    for index in range(4):
        image, mask = real_image("kvasir_seg", FIRST_IMAGE + 10 + index)
        stored = api.post(
            f"/projects/{project_id}/images", files={"file": (image.name, image.read_bytes())}
        )
        image_ids.append(int(stored.json()["image"]["id"]))
        masks.append(truth_mask(mask))
    runtime = build_runtime(server.settings)
    try:
        made = make_round_with_candidates(
            runtime, project_id, image_ids, [0.9, 0.8, 0.7, 0.6], masks
        )
    finally:
        runtime.close()
    page = open_page(browser, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.base}/#/projects/{project_id}/review")
    first = wait_drawn_change(page, None)
    page.dblclick("button:has-text('Accept (A)')")
    second = wait_drawn_change(page, first)
    page.keyboard.down("a")  # held: the browser repeats the key
    page.keyboard.down("a")
    page.keyboard.down("a")
    page.keyboard.up("a")
    wait_drawn_change(page, second)
    page.wait_for_function("() => !document.body.innerText.includes('sending…')")
    time.sleep(1)  # any further decision would have been sent by now
    statuses = [candidate(api, project_id, c)["status"] for c in made.candidate_ids]
    assert statuses == ["accepted", "accepted", "pending", "pending"], statuses

    # Strokes not saved yet: moving to another screen asks first, and staying keeps them.
    page.keyboard.press("e")
    page.wait_for_selector(".edit-tools")
    box = page.locator(".overlay-fill").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.1)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.1, steps=6)
    page.mouse.up()
    asked: list[str] = []

    def answer(dialog: Any, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click("nav.tabs a:has-text('Images')")
    page.wait_for_function("() => location.hash.endsWith('/review')")
    assert asked and "unsaved changes" in asked[0]
    assert page.locator(".edit-tools").count() == 1  # still editing, strokes kept
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.go_back()  # Back asks too
    page.wait_for_function("() => !location.hash.endsWith('/review')")
    page.wait_for_selector(".edit-tools", state="detached")
    assert len(asked) == 2
    page.close()


def test_a_clinician_draws_a_human_label_on_the_image_page(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    project_id = new_project(api, "drawn labels")
    image, _ = real_image("kvasir_seg", FIRST_IMAGE + 20)
    stored = api.post(
        f"/projects/{project_id}/images", files={"file": (image.name, image.read_bytes())}
    ).json()["image"]
    labels = f"/projects/{project_id}/images/{stored['id']}/labels"
    page = open_page(browser, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.base}/#/projects/{project_id}/images/{stored['id']}")
    page.wait_for_selector(f"#viewer[data-drawn='{stored['id']}-v0']")  # the image, unlabelled
    assert page.inner_text(".shown-version") == "No label: the image alone."

    def stroke(y: float) -> None:
        box = page.locator(".overlay-fill").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * y, steps=8)
        page.mouse.up()

    page.click("button[name=draw-label]")
    page.wait_for_selector(".label-editor .edit-tools")
    page.fill("input[name=brush-size]", "30")
    stroke(0.5)
    page.keyboard.press("Enter")
    page.wait_for_selector(".notice:has-text('Saved as label version 1.')")
    first = api.get(f"{labels}/current").json()
    assert (first["version"], first["source"]) == (1, "human")
    assert 0.01 < first["foreground_fraction"] < 0.5

    # Someone else saves a version while this one is drawn: nothing is lost either way.
    page.wait_for_selector(f"#viewer[data-drawn='{stored['id']}-v1']")
    page.click("button[name=draw-label]")
    page.wait_for_selector(".label-editor .edit-tools")
    stroke(0.2)
    height, width = stored["height"], stored["width"]
    other = np.zeros((height, width), np.uint8)
    other[: height // 4, : width // 4] = 1
    assert api.post(labels, files={"file": ("m.png", png_bytes(other))}).status_code == 201
    page.keyboard.press("Enter")
    page.wait_for_selector(".label-conflict")
    assert page.locator(".label-editor .edit-tools").count() == 1  # strokes kept
    assert page.locator(".image-page .errors .error").count() == 0  # the notice says it all
    page.click("button:has-text('Save mine as the newest version anyway')")
    page.wait_for_selector(".notice:has-text('Saved as label version 3.')")
    assert page.locator(".image-page .errors .error").count() == 0
    versions = api.get(labels).json()
    assert [label["version"] for label in versions] == [1, 2, 3]

    # An upload that does not belong is archived, with a reason, and restored.
    page.click("button[name=archive-image]")
    page.fill("input[name=archive-reason]", "wrong patient")
    page.click(".archive-form button:has-text('Archive')")
    page.wait_for_selector(".archived-note:has-text('wrong patient')")
    assert page.locator("button[name=draw-label]").count() == 0  # takes no labels now
    page.goto(f"{server.base}/#/projects/{project_id}/images")
    page.wait_for_selector(".image-count:has-text('0 images.')")
    page.select_option("select[name=image-status]", "archived")
    page.wait_for_selector(f"tr[data-image='{stored['id']}'] .badge.status-archived")
    page.click(f"tr[data-image='{stored['id']}'] a >> nth=0")
    page.click(".archived-note button:has-text('Restore it')")
    page.wait_for_selector(".notice:has-text('Restored')")
    page.wait_for_selector("button[name=draw-label]")
    assert api.get(f"/projects/{project_id}/images/{stored['id']}").json()["archived_at"] is None

    page.goto(f"{server.base}/#/projects/{project_id}/review")
    page.wait_for_selector(".queue-empty h2:has-text('Nothing to review here')")
    assert page.locator("#viewer").is_hidden()
    assert page.locator("button:has-text('Accept (A)')").is_disabled()
    views = [f"images/{stored['id']}", "images", "review", "dashboard", ""]
    fits_a_phone(page, server, project_id, views)
    page.close()


def test_an_admin_giving_up_their_own_role_is_asked_and_the_page_follows(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    project_id = new_project(api, "handover")
    assert api.post("/users", json={"username": "drhand", "password": "a handover pw"}).is_success
    assert api.put(f"/projects/{project_id}/members/drhand", json={"role": "admin"}).is_success
    page = open_page(browser, server, "drhand", "a handover pw")
    page.goto(f"{server.base}/#/projects/{project_id}")
    page.wait_for_selector("button:has-text('Start round')")
    page.fill("input[name=member-username]", "nobody")
    page.click("button:has-text('Add or change')")
    page.wait_for_selector(".members .errors:has-text('nobody')")
    own = "tr[data-member=drhand] select"
    page.select_option(own, "viewer")
    page.wait_for_selector(".dialog:has-text('Make yourself viewer?')")
    page.click(".dialog button:has-text('Cancel')")
    page.wait_for_selector(".dialog", state="detached")
    assert page.eval_on_selector(own, "select => select.value") == "admin"
    assert members(api, project_id)["drhand"] == "admin"
    page.select_option(own, "viewer")
    page.click(".dialog button:has-text('Yes, give it up')")
    page.wait_for_selector("button:has-text('Start round')", state="detached")
    assert members(api, project_id)["drhand"] == "viewer"
    assert page.locator(".members .errors").count() == 0  # the old refusal is answered
    page.close()


def test_an_account_page_makes_api_tokens_and_changes_the_password(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    assert api.post(
        "/users", json={"username": "drtok", "password": "a first passphrase"}
    ).is_success
    page = open_page(browser, server, "drtok", "a first passphrase")
    page.click("header a.user")
    page.wait_for_selector("section.account h1:has-text('drtok')")
    page.wait_for_selector(".tokens .note:has-text('No API token yet.')")
    page.fill("input[name=token-name]", "pacs-router")
    page.click("button:has-text('Create token')")
    secret = page.inner_text(".new-token .token-value").strip()
    with httpx.Client(base_url=f"{server.base}/api/v1") as tool:
        me = tool.get("/users/me", headers={"Authorization": f"Bearer {secret}"})
        assert me.status_code == 200 and me.json()["username"] == "drtok"
        page.click("button:has-text('Done')")
        assert page.locator(".new-token").count() == 0  # shown once, then gone
        page.click("tr:has-text('pacs-router') button:has-text('revoke')")
        page.wait_for_selector("tr:has-text('pacs-router') td.state:has-text('revoked')")
        assert (
            tool.get("/users/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
        )

    page.fill("input[name=current-password]", "not my password")
    page.fill("input[name=new-password]", "a second passphrase")
    page.fill("input[name=new-password-again]", "a second passphrase")
    page.click("button:has-text('Change password')")
    page.wait_for_selector(".password .errors:has-text('wrong')")
    page.fill("input[name=current-password]", "a first passphrase")
    page.fill("input[name=new-password-again]", "a typo passphrase")
    page.click("button:has-text('Change password')")
    page.wait_for_selector(".password .errors:has-text('differ')")
    page.fill("input[name=new-password-again]", "a second passphrase")
    page.click("button:has-text('Change password')")
    page.wait_for_selector("text=Your password was changed: log in with the new one.")
    page.fill("input[name=username]", "drtok")
    page.fill("input[name=password]", "a second passphrase")
    page.click("button[type=submit]")
    page.wait_for_selector(".projects-page[data-loaded=true]")
    page.close()


def test_a_round_finishing_during_review_is_offered_and_fills_a_dry_queue(
    browser: Any, server: LiveServer, api: httpx.Client
) -> None:
    project_id = new_project(api, "rounds while reviewing")
    image_ids, masks = [], []
    for index in range(3):
        image, mask = real_image("kvasir_seg", FIRST_IMAGE + index)
        stored = api.post(
            f"/projects/{project_id}/images", files={"file": (image.name, image.read_bytes())}
        )
        image_ids.append(int(stored.json()["image"]["id"]))
        masks.append(truth_mask(mask))
    runtime = build_runtime(server.settings)
    try:
        first = make_round_with_candidates(runtime, project_id, image_ids[:1], [0.9], masks[:1])
        page = open_page(browser, server, "admin", ADMIN_PASSWORD)
        page.goto(f"{server.base}/#/projects/{project_id}/review")
        shown = f"dl.candidate[data-candidate='{first.candidate_ids[0]}']"
        page.wait_for_selector(shown)
        page.wait_for_selector("select[name=round] option[value='1']", state="attached")

        # finished while a candidate is on screen: offered, nothing moves under the reviewer
        second = make_round_with_candidates(
            runtime, project_id, image_ids[1:2], [0.8], masks[1:2], number=2
        )
        page.wait_for_selector(".new-round:has-text('Round 2 finished with 1 new candidate.')")
        assert page.locator(shown).count() == 1 and page.inner_text(".pending-count") == "1"
        page.click(".new-round button:has-text('Load them')")
        page.wait_for_function("document.querySelector('.pending-count').textContent === '2'")
        page.wait_for_function("!document.querySelector('.new-round')")  # the rounds reloaded
        assert page.locator("select[name=round] option[value='2']").count() == 1

        # a round at work is shown as such
        with session_scope(runtime.session_factory) as session:
            session.add(
                Round(project_id=project_id, number=3, status=RoundStatus.RUNNING,
                      settings={}, metrics={}, stages={}, counts={}, stage="train", progress=0.4)
            )  # fmt: skip
        page.wait_for_selector(".round-active:has-text('Round 3 running: train 40%')")

        # the queue ran dry: the next finished round's candidates come in by themselves
        page.wait_for_selector(f"#viewer[data-drawn='{first.candidate_ids[0]}']")
        page.keyboard.press("a")
        page.wait_for_selector(f"#viewer[data-drawn='{second.candidate_ids[0]}']")
        page.keyboard.press("a")
        page.wait_for_selector(".queue-end")
        with session_scope(runtime.session_factory) as session:
            running = session.scalars(
                select(Round).where(Round.project_id == project_id, Round.number == 3)
            ).one()
            running.status, running.finished_at = RoundStatus.CANCELLED, utcnow()
        fourth = make_round_with_candidates(
            runtime, project_id, image_ids[2:], [0.7], masks[2:], number=4
        )
        page.wait_for_selector(f"dl.candidate[data-candidate='{fourth.candidate_ids[0]}']")
        page.wait_for_function(
            "!document.querySelector('.new-round') && !document.querySelector('.round-active')"
        )
        page.close()
    finally:
        runtime.close()
