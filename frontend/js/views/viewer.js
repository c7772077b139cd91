// The image with the machine mask over it: three stacked canvases at the image's own size
// (image, translucent fill, contour) moved by one CSS transform, so zoom and pan cost the
// GPU a composite and nothing is redrawn. In edit mode the pointer paints the mask.

import { useEffect, useLayoutEffect, useRef } from "preact/hooks";
import { html } from "../components.js";
import { contourPixels, contourThickness, expandRegion, fillPixels } from "../mask.js";
import { cssTransform, fitView, panBy, toImage, zoomAt } from "../viewport.js";

const WHEEL_STEP = 1.0015; // zoom factor per wheel delta unit: smooth on trackpads and wheels

/** Tell whoever waits (tests, the latency benchmark) that a candidate is on screen: after the
 * frame that shows it has been painted, not merely after the draw calls. */
function markDrawn(box, id) {
  requestAnimationFrame(() => setTimeout(() => {
    if (box.dataset.showing !== String(id)) return; // a newer candidate replaced it meanwhile
    box.dataset.drawn = String(id);
    performance.mark("review:drawn", { detail: { id } });
  }, 0));
}

function sizeCanvas(canvas, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width; // resizing also clears
    canvas.height = height;
  } else {
    canvas.getContext("2d").clearRect(0, 0, width, height);
  }
  return canvas.getContext("2d");
}

/** Draw `source` ({image, fill, contour} bitmaps, full size or preview) into the layers. The
 * canvases keep the image's own size in CSS pixels whatever the bitmaps' size, so the view
 * transform means the same for both. */
function drawLayers(layers, source, width, height) {
  for (const name of ["image", "fill", "contour"]) {
    const canvas = layers[name].current;
    const bitmap = source[name];
    sizeCanvas(canvas, bitmap.width, bitmap.height).drawImage(bitmap, 0, 0);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
  }
}

export function Viewer({ assets, waiting, editor, showOverlay, opacity, control }) {
  const box = useRef(null);
  const stack = useRef(null);
  const layers = { image: useRef(null), fill: useRef(null), contour: useRef(null) };
  const cursor = useRef(null);
  const view = useRef({ scale: 1, x: 0, y: 0 });
  const gesture = useRef(null);
  const editorRef = useRef(editor);
  editorRef.current = editor;
  const assetsRef = useRef(assets);
  assetsRef.current = assets;
  const detail = useRef("full"); // which bitmaps the canvases hold: "preview" or "full"

  const apply = () => {
    stack.current.style.transform = cssTransform(view.current);
    stack.current.classList.toggle("pixelated", view.current.scale >= 2);
    // The preview is enough until the view magnifies it (beyond rounding); then the
    // originals, once.
    const shown = assetsRef.current;
    const magnified = shown && shown.preview && view.current.scale * devicePixelRatio >
      1.02 * shown.preview.image.width / shown.width;
    if (detail.current === "preview" && magnified) {
      drawLayers(layers, shown, shown.width, shown.height);
      detail.current = "full";
    }
  };
  const fit = () => {
    if (!assets) return;
    const { clientWidth, clientHeight } = box.current;
    view.current = fitView(assets.width, assets.height, clientWidth, clientHeight);
    apply();
  };

  // Draw a new candidate, or the original layers again when an edit is abandoned.
  useLayoutEffect(() => {
    if (!assets) return;
    // Editing paints into the full-size layers; a first look needs only the preview.
    const full = Boolean(editor) || !assets.preview;
    drawLayers(layers, full ? assets : assets.preview, assets.width, assets.height);
    detail.current = full ? "full" : "preview";
    box.current.dataset.showing = String(assets.id);
    markDrawn(box.current, assets.id);
  }, [assets, Boolean(editor)]);
  useLayoutEffect(fit, [assets]);
  useEffect(() => { if (!editor && cursor.current) cursor.current.style.display = "none"; }, [editor]);

  /** Redraw the mask layers over `region` from the edited class indices. */
  const redraw = (region) => {
    const session = editorRef.current;
    if (!session || !region) return;
    const { classes, width, height } = session;
    const fillContext = layers.fill.current.getContext("2d");
    fillContext.putImageData(new ImageData(fillPixels(classes, width, region), region.w, region.h),
      region.x, region.y);
    const thickness = contourThickness(width, height);
    const around = expandRegion(region, thickness + 1, width, height);
    const pixels = contourPixels(classes, width, height, thickness, around);
    layers.contour.current.getContext("2d").putImageData(
      new ImageData(pixels, around.w, around.h), around.x, around.y);
  };

  const zoomCentre = (factor) => {
    const { clientWidth, clientHeight } = box.current;
    view.current = zoomAt(view.current, factor, clientWidth / 2, clientHeight / 2);
    apply();
  };
  const deviceSize = () => ({
    width: Math.round(box.current.clientWidth * devicePixelRatio),
    height: Math.round(box.current.clientHeight * devicePixelRatio),
  });
  Object.assign(control, { redraw, fit, zoom: zoomCentre, deviceSize });

  useEffect(() => {
    const element = box.current;
    const onWheel = (event) => {
      event.preventDefault();
      const rect = element.getBoundingClientRect();
      const factor = WHEEL_STEP ** -event.deltaY;
      view.current = zoomAt(view.current, factor, event.clientX - rect.left, event.clientY - rect.top);
      apply();
      showCursor(event);
    };
    element.addEventListener("wheel", onWheel, { passive: false });
    return () => element.removeEventListener("wheel", onWheel);
  }, []);

  const local = (event) => {
    const rect = box.current.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  };
  const showCursor = (event) => {
    const session = editorRef.current;
    const ring = cursor.current;
    if (!ring) return;
    if (!session) { ring.style.display = "none"; return; }
    const p = local(event);
    const diameter = session.size * view.current.scale;
    Object.assign(ring.style, {
      display: "block", width: `${diameter}px`, height: `${diameter}px`,
      left: `${p.x - diameter / 2}px`, top: `${p.y - diameter / 2}px`,
    });
  };

  const onPointerDown = (event) => {
    const session = editorRef.current;
    const p = local(event);
    box.current.setPointerCapture(event.pointerId);
    // no strokes while a save is on its way: the saved PNG is the mask as it was sent
    const paints = session && !session.saving && event.button === 0 && !event.shiftKey;
    if (paints) {
      const at = toImage(view.current, p.x, p.y);
      session.begin();
      redraw(session.paint(at, at));
      gesture.current = { kind: "paint", last: at };
    } else {
      gesture.current = { kind: "pan", last: p };
    }
  };
  const onPointerMove = (event) => {
    showCursor(event);
    const g = gesture.current;
    if (!g) return;
    const p = local(event);
    if (g.kind === "pan") {
      view.current = panBy(view.current, p.x - g.last.x, p.y - g.last.y);
      g.last = p;
      apply();
    } else {
      const session = editorRef.current;
      if (!session || session.saving) { // the edit ended (Esc, a save) mid-stroke
        gesture.current = null;
        return;
      }
      const at = toImage(view.current, p.x, p.y);
      redraw(session.paint(g.last, at));
      g.last = at;
    }
  };
  const onPointerUp = () => {
    const g = gesture.current;
    gesture.current = null;
    if (g && g.kind === "paint" && editorRef.current) editorRef.current.end();
  };

  const overlayStyle = { opacity, visibility: showOverlay ? "visible" : "hidden" };
  return html`<div id="viewer" class=${`viewer ${editor ? "editing" : ""}`} ref=${box}
      onPointerDown=${onPointerDown} onPointerMove=${onPointerMove} onPointerUp=${onPointerUp}
      onPointerCancel=${onPointerUp} onPointerLeave=${() => cursor.current && (cursor.current.style.display = "none")}
      onContextMenu=${(e) => e.preventDefault()}>
    <div class="stack" ref=${stack} hidden=${!assets && !waiting}>
      <canvas class="layer" ref=${layers.image}></canvas>
      <canvas class="layer overlay-fill" ref=${layers.fill} style=${overlayStyle}></canvas>
      <canvas class="layer overlay-contour" ref=${layers.contour}
        style=${{ visibility: overlayStyle.visibility }}></canvas>
    </div>
    <div class="brush-cursor" ref=${cursor}></div>
    ${waiting && html`<p class="viewer-note">Loading image…</p>`}
  </div>`;
}
