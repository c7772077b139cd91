// Drawing a human label on the image page: brush and eraser over the image, starting from the
// version on screen (or an empty mask), saved as a new label version. The same tools and keys
// as correcting a machine label in the review, and the same care for unsaved strokes.

import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { Confirm, html } from "../components.js";
import { actionFor, isTyping } from "../keys.js";
import { guardLeaving } from "../router.js";
import { createEditSession, EditToolbar, maskPng } from "./editor.js";
import { Viewer } from "./viewer.js";

const ZOOM_STEP = 1.25;
const HELP = "Keys: B brush · X eraser · [ ] size · F fill holes · Ctrl-Z/Ctrl-Y undo/redo · " +
  "Enter or S save · Esc cancel · +/− zoom, 0 fit · O overlay · Shift-drag pans.";

/** `assets`: the image with the mask to start from; `currentVersion`: the image's current
 * label version (0: none), sent so that a version saved meanwhile by someone else is a 409
 * instead of being silently built over. `onSaved(label)` and `onClose()` end the drawing. */
export function LabelEditor({
  projectId, imageId, assets, startedFrom, currentVersion, classNames, onSaved, onClose, onError,
}) {
  const [, setTick] = useState(0);
  const rerender = () => setTick((t) => t + 1);
  const [session] = useState(() => createEditSession(assets, rerender));
  const [overlay, setOverlay] = useState(true);
  const [discarding, setDiscarding] = useState(false);
  const [conflict, setConflict] = useState(false);
  const control = useRef({}).current;

  const save = async (expected = currentVersion) => {
    session.saving = true;
    rerender();
    try {
      const png = await maskPng(session);
      const { status, body } = await api.uploadLabel(projectId, imageId, png, null, expected);
      onSaved(body, status === 200);
    } catch (exc) {
      // A newer version meanwhile: the notice above offers to save anyway, strokes kept.
      if (exc.status === 409 && exc.code !== "image_archived" && expected !== null) setConflict(true);
      else onError(`Your label of image ${imageId} was not saved: ${exc.message}`);
    } finally {
      session.saving = false;
      rerender();
    }
  };
  const cancel = () => (session.history.canUndo ? setDiscarding(true) : onClose());
  const actions = {
    brush: () => { session.tool = "brush"; rerender(); },
    eraser: () => { session.tool = "eraser"; rerender(); },
    smaller: () => session.resize(1 / 1.25),
    larger: () => session.resize(1.25),
    undo: () => control.redraw(session.undo()),
    redo: () => control.redraw(session.redo()),
    fillHoles: () => control.redraw(session.fillHoles()),
    save: () => save(),
    cancel,
    toggleOverlay: () => setOverlay((on) => !on),
    zoomIn: () => control.zoom(ZOOM_STEP),
    zoomOut: () => control.zoom(1 / ZOOM_STEP),
    fit: () => control.fit(),
  };

  const keys = useRef(null);
  keys.current = (event) => {
    if (isTyping(event.target, event.key) || document.querySelector(".dialog")) return;
    const action = actionFor(event, "edit");
    if (!action || !actions[action] || session.saving) return;
    event.preventDefault();
    actions[action]();
  };
  useEffect(() => {
    const listener = (event) => keys.current(event);
    const guard = (event) => {
      if (!session.history.canUndo) return;
      event.preventDefault();
      event.returnValue = "";
    };
    window.addEventListener("keydown", listener);
    window.addEventListener("beforeunload", guard);
    const stopAsking = guardLeaving(() => (session.history.canUndo
      ? "Leave this image and discard the label you are drawing?" : null));
    return () => {
      window.removeEventListener("keydown", listener);
      window.removeEventListener("beforeunload", guard);
      stopAsking();
    };
  }, []);

  return html`<div class="label-editor">
    <p class="note">Drawing a new label version, starting from ${startedFrom}.</p>
    ${conflict && html`<div class="notice label-conflict" role="status">
      Someone saved a newer label of this image while you drew. Your strokes are still here.
      <button class="primary" onClick=${() => { setConflict(false); save(null); }}>
        Save mine as the newest version anyway</button>
    </div>`}
    ${discarding && html`<${Confirm} text="Discard the label you are drawing?" confirmLabel="Discard"
      onConfirm=${onClose} onCancel=${() => setDiscarding(false)} />`}
    <${EditToolbar} session=${session} classNames=${classNames} saveLabel="Save label"
      onAction=${(name) => actions[name]()}
      onSet=${(change) => { Object.assign(session, change); rerender(); }} />
    <div class="image-viewer"><${Viewer} assets=${assets} waiting=${false} editor=${session}
      showOverlay=${overlay} opacity=${0.45} control=${control} /></div>
    <p class="help">${HELP}</p>
  </div>`;
}
