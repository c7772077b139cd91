"""Benchmark: review latency in a real browser, from pressing A to the next candidate drawn.

    python bench/review_latency.py                         # 1000 pending, Kvasir-SEG as it is
    python bench/review_latency.py --side 2048             # images and masks scaled to 2048 px
    python bench/review_latency.py --presses 300 --think-ms 0 --out bench/out/review.json

A real server (``samdsk api``, embedded default, in a temporary folder) gets one project with
``--candidates`` pending candidates made through the data layer: real Kvasir-SEG images and
their masks as machine masks, random match scores. Chromium (Debian's, headless) logs in,
opens the review screen and presses A ``--presses`` times, pausing ``--think-ms`` after each
image appears, as a reviewer looks before deciding. Each latency runs from the key event's
timestamp (``performance.mark("review:key")``) to the page's ``review:drawn`` mark, set once
the frame showing the next image and its overlay has been painted. At the end the API must
report exactly ``--presses`` accepted candidates.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from app.db import session_scope
from app.models import Image
from app.runtime import Runtime, build_runtime
from tests.live_server import ADMIN_PASSWORD, LiveServer
from tests.review_world import make_round_with_candidates

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kvasir_seg"
CHROMIUM = "/usr/bin/chromium"
LAST_LATENCY = """() => {
  const key = performance.getEntriesByName("review:key").at(-1);
  const drawn = performance.getEntriesByName("review:drawn").at(-1);
  performance.clearMarks();
  return drawn.startTime - key.startTime;
}"""


def _scaled(path: Path, side: int | None, mask: bool) -> PILImage.Image:
    with PILImage.open(path) as opened:
        img = opened.convert("L" if mask else "RGB")
    if side:
        factor = side / max(img.size)
        size = (round(img.width * factor), round(img.height * factor))
        img = img.resize(
            size, PILImage.Resampling.NEAREST if mask else PILImage.Resampling.BILINEAR
        )
    return img


def seed_images(runtime: Runtime, project_id: int, count: int, side: int | None) -> list[int]:
    """``count`` image rows cycling over Kvasir-SEG; repeated files get distinct hashes."""
    files = sorted((DATA / "images").iterdir())
    ids = []
    with session_scope(runtime.session_factory) as session:
        for i in range(count):
            img = _scaled(files[i % len(files)], side, mask=False)
            buffer = io.BytesIO()
            img.save(buffer, format="JPEG", quality=90)
            data = buffer.getvalue()
            image = Image(
                project_id=project_id,
                content_hash=hashlib.sha256(data + i.to_bytes(4, "big")).hexdigest(),
                storage_key=runtime.storage.put_content(data, suffix=".jpg"),
                original_filename=f"{i:04d}-{files[i % len(files)].name}",
                format="jpeg",
                width=img.width,
                height=img.height,
                channels=3,
                bit_depth=8,
                size_bytes=len(data),
            )
            session.add(image)
            session.flush()
            ids.append(image.id)
    return ids


def masks(count: int, side: int | None) -> Iterator[np.ndarray]:
    """Class-index masks (0/1) matching ``seed_images``, one at a time to bound memory."""
    files = sorted((DATA / "images").iterdir())
    for i in range(count):
        path = DATA / "masks" / f"{files[i % len(files)].stem}.png"
        yield (np.asarray(_scaled(path, side, mask=True)) > 127).astype(np.uint8)


def screenshots(page: Any, folder: Path) -> None:
    """The review screen, then edit mode after one brush stroke (abandoned with Escape)."""
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / "review.png"))
    page.keyboard.press("e")
    page.wait_for_selector(".edit-tools")
    box = page.locator(".overlay-fill").bounding_box()
    # From the middle outwards: Kvasir-SEG polyps sit near the centre, so the stroke shows.
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.85, box["y"] + box["height"] * 0.2, steps=12)
    page.mouse.up()
    page.screenshot(path=str(folder / "review-edit.png"))
    page.keyboard.press("Escape")
    page.wait_for_selector(".decisions")


def measure(
    base: str, project_id: int, presses: int, think_ms: int, shots: Path | None
) -> list[float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/#/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector(".projects-page[data-loaded=true]")
        page.goto(f"{base}/#/projects/{project_id}/review")
        page.wait_for_selector("#viewer[data-drawn]", timeout=120_000)
        if shots:
            screenshots(page, shots)
        latencies = []
        for _ in range(presses):
            page.wait_for_timeout(think_ms)
            shown = page.get_attribute("#viewer", "data-drawn")
            page.keyboard.press("a")
            page.wait_for_function(
                "shown => document.querySelector('#viewer').dataset.drawn !== shown", arg=shown
            )
            latencies.append(float(page.evaluate(LAST_LATENCY)))
        page.wait_for_function("() => !document.body.innerText.includes('sending…')")
        errors = page.locator(".errors .error").all_inner_texts()
        browser.close()
    if errors:
        raise RuntimeError(f"the page reported errors: {errors}")
    return latencies


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--think-ms", type=int, default=250)
    parser.add_argument("--side", type=int, default=None, help="scale images to this long side")
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON")
    parser.add_argument("--screenshots", type=Path, default=None, help="save screens here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        server = LiveServer(Path(folder) / "var", command="api")
        try:
            with server.client() as client:
                project = client.post("/projects", json={"name": "latency"}).json()
            runtime = build_runtime(server.settings)
            started = time.monotonic()
            ids = seed_images(runtime, project["id"], args.candidates, args.side)
            rng = random.Random(0)
            scores = sorted((rng.uniform(0.3, 1.0) for _ in ids), reverse=True)
            make_round_with_candidates(
                runtime,
                project["id"],
                ids,
                scores,
                masks(args.candidates, args.side),  # type: ignore[arg-type]
            )
            runtime.close()
            seeded = time.monotonic() - started
            latencies = measure(
                server.base, project["id"], args.presses, args.think_ms, args.screenshots
            )
            with server.client() as client:
                stats = client.get(f"/projects/{project['id']}/rounds/1/statistics").json()
        finally:
            server.stop()
    if stats["accepted"] != args.presses:
        raise RuntimeError(f"{args.presses} presses but {stats['accepted']} accepted")
    result = {
        "candidates": args.candidates,
        "presses": args.presses,
        "think_ms": args.think_ms,
        "side": args.side or "as stored (Kvasir-SEG: 332..1920 x 352..1072, median 621 x 530)",
        "median_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
        "seed_seconds": round(seeded, 1),
        "machine": f"{platform.machine()}, {platform.system()}, Chromium headless, software GL",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**result, "latencies_ms": latencies}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
