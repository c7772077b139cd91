// The review screen: the ranked queue, the viewer, and the decisions, all on the keyboard.
// Accept and reject move on at once (the request finishes in the background and is undone,
// with its error shown, if the API refuses); an edit waits for its save.

import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { Confirm, Errors, html, Notice, useErrors, useLoad } from "../components.js";
import { hasRole } from "../format.js";
import { actionFor, isTyping } from "../keys.js";
import { guardLeaving, href } from "../router.js";
import { ReviewQueue } from "../queue.js";
import { BulkAccept } from "./bulk.js";
import { createEditSession, EditToolbar, maskPng } from "./editor.js";
import {
  CandidateFacts, Filters, QueueList, RejectForm, RoundNews, useRoundWatch,
} from "./review_parts.js";
import { Viewer } from "./viewer.js";

const ZOOM_STEP = 1.25;
const HELP = "Keys: A accept · R reject · E edit · U or Ctrl-Z undo a decision · " +
  "←/→ previous/next · O overlay · +/− zoom, " +
  "0 fit, wheel zooms, drag pans. Editing: B brush · X eraser · [ ] size · F fill holes · " +
  "Ctrl-Z/Ctrl-Y undo/redo · Enter or S save · Esc cancel · Shift-drag pans.";

/** A click handler that ignores the further clicks of a double or triple click: the second
 * click would land on the next candidate, which the reviewer has not seen. */
const once = (action) => (event) => { if (event.detail <= 1) action(); };

const filtered = (filters) => filters.minScore > 0 || filters.maxScore < 1 || filters.round !== "";

export function ReviewScreen({ projectId }) {
  const meta = useLoad(async () => {
    const [project, rounds] = await Promise.all([api.project(projectId), api.rounds(projectId)]);
    return { project, rounds };
  }, [projectId]);
  const [filters, setFilters] = useState({ minScore: 0, maxScore: 1, round: "" });
  const [, setTick] = useState(0);
  const rerender = () => setTick((t) => t + 1);
  const queue = useRef(null);
  const [mode, setMode] = useState("review");
  const [edit, setEdit] = useState(null);
  const [overlay, setOverlay] = useState(true);
  const [opacity, setOpacity] = useState(0.45);
  const [notice, setNotice] = useState("");
  const errors = useErrors();
  const control = useRef({}).current;
  // an edit the API refused (its candidate was decided meanwhile), kept to save as a label
  const [orphan, setOrphan] = useState(null);
  const [discarding, setDiscarding] = useState(false);
  const role = meta.data ? meta.data.project.my_role : null;
  const canDecide = hasRole(role, "reviewer");

  const reload = () => {
    if (queue.current) queue.current.close();
    const q = new ReviewQueue(projectId, filters, rerender, control.deviceSize());
    queue.current = q;
    q.load().catch(errors.add);
    rerender();
  };
  useEffect(() => { reload(); return () => queue.current && queue.current.close(); }, [filters]);

  // A round that finishes while the page is open: its candidates are offered, and loaded at
  // once where the queue has run dry (nothing the reviewer is looking at moves).
  const watch = useRoundWatch(projectId, meta.data ? meta.data.rounds : null);
  const loadNewRounds = () => { meta.reload(); reload(); };

  const q = queue.current;
  const current = q && q.current;
  const assets = current ? q.ready(current) : null;
  const dry = Boolean(q && q.loaded && !current && mode === "review");
  useEffect(() => { if (watch.finished.length && dry) loadNewRounds(); }, [watch.finished.length, dry]);
  useEffect(() => {
    if (current && !assets) {
      q.whenReady(current).then(rerender, (exc) => errors.add(
        `Candidate ${current.id} (image ${current.image_id}) could not be shown: ${exc.message}`));
    }
  }, [current && current.id, Boolean(assets)]);

  const decide = (decision, send) => {
    performance.mark("review:decided", { detail: { id: current.id, decision } });
    q.decide(current, decision, send, (exc) => {
      errors.add(`Candidate ${current.id} (image ${current.image_id}) was not ${decision}: ${exc.message}`);
      if (exc.status === 409) reload(); // decided or superseded elsewhere: the queue moved on
    });
  };
  const undecided = () => {
    if (!canDecide) {
      errors.add(`Deciding on candidates needs the reviewer role; yours in this project is ${role || "unknown"}.`);
      return false;
    }
    if (!current) { errors.add("There is no candidate here to decide on."); return false; }
    if (!q.ready(current)) { // a decision is on what the reviewer saw, never on a blank viewer
      errors.add(`Candidate ${current.id} is not on screen yet; decide once it is shown.`);
      return false;
    }
    if (current.decision) {
      errors.add(`Candidate ${current.id} is already ${current.decision}.`);
      return false;
    }
    return true;
  };

  const startEdit = () => {
    if (!undecided() || !assets) return;
    setEdit(createEditSession(assets, rerender));
    setMode("edit");
  };
  const stopEdit = () => { setEdit(null); setMode("review"); setDiscarding(false); };
  const cancelEdit = () => {
    if (edit && edit.history.canUndo) setDiscarding(true); // strokes are not thrown away unasked
    else stopEdit();
  };
  const saveEdit = async () => {
    const session = edit;
    session.saving = true;
    rerender();
    let png = null;
    try {
      png = await maskPng(session);
      await api.edit(projectId, current.id, png);
      current.decision = "edited";
      q.remember(current);
      stopEdit();
      await q.advance();
    } catch (exc) {
      errors.add(`The corrected label of candidate ${current.id} was not saved: ${exc.message}`);
      if (exc.status === 409 && png) setOrphan({ png, imageId: current.image_id });
    } finally {
      session.saving = false;
      rerender();
    }
  };
  const saveOrphanAsLabel = async () => {
    const { png, imageId } = orphan;
    try {
      const { body } = await api.uploadLabel(projectId, imageId, png);
      setOrphan(null);
      errors.clear(); // the failed save's message is answered
      stopEdit();
      setNotice(`Your edit was saved as label version ${body.version} of image ${imageId}.`);
      reload();
    } catch (exc) {
      errors.add(`Your edit of image ${imageId} was not saved as a label: ${exc.message}`);
    }
  };

  // Leaving the page (reload, closing the tab, another screen) with unsaved strokes asks first.
  useEffect(() => {
    if (mode !== "edit" || !edit) return undefined;
    const guard = (event) => {
      if (!edit.history.canUndo) return;
      event.preventDefault();
      event.returnValue = "";
    };
    window.addEventListener("beforeunload", guard);
    const stopAsking = guardLeaving(() => (edit.history.canUndo
      ? "Leave the review and discard your unsaved changes to this mask?" : null));
    return () => { window.removeEventListener("beforeunload", guard); stopAsking(); };
  }, [mode, edit]);

  const undoDecision = () => {
    if (!canDecide) { undecided(); return; }
    const target = current && current.decision ? current : q && q.lastDecided();
    if (!target) { errors.add("Nothing decided on this page to undo."); return; }
    if (target.busy) { errors.add(`Candidate ${target.id} is still being saved.`); return; }
    const was = target.decision;
    q.undo(target, () => api.undo(projectId, target.id), (exc) => errors.add(
      `Candidate ${target.id} (image ${target.image_id}) is still ${was}: ${exc.message}`),
    ).then(() => target.decision === null && setNotice(
      `Candidate ${target.id} is pending again (it was ${was}).`));
  };

  const actions = {
    accept: () => undecided() && decide("accepted", () => api.accept(projectId, current.id)),
    undoDecision,
    reject: () => undecided() && setMode("reject"),
    edit: startEdit,
    next: () => q && q.go(q.index + 1),
    previous: () => q && q.go(q.index - 1),
    toggleOverlay: () => setOverlay((on) => !on),
    zoomIn: () => control.zoom(ZOOM_STEP),
    zoomOut: () => control.zoom(1 / ZOOM_STEP),
    fit: () => control.fit(),
    brush: () => { edit.tool = "brush"; rerender(); },
    eraser: () => { edit.tool = "eraser"; rerender(); },
    smaller: () => edit.resize(1 / 1.25),
    larger: () => edit.resize(1.25),
    undo: () => control.redraw(edit.undo()),
    redo: () => control.redraw(edit.redo()),
    fillHoles: () => control.redraw(edit.fillHoles()),
    save: saveEdit,
    cancel: cancelEdit,
  };
  const onReject = (reason) => {
    setMode("review");
    decide("rejected", () => api.reject(projectId, current.id, reason));
  };

  const keyHandler = useRef(null);
  keyHandler.current = (event) => {
    if (mode === "reject" || isTyping(event.target, event.key) || document.querySelector(".dialog")) return;
    const action = actionFor(event, mode === "edit" ? "edit" : "review");
    if (!action || !actions[action] || (edit && edit.saving)) return;
    event.preventDefault();
    // The latency benchmark measures from this mark (the key's own timestamp) to drawn.
    performance.mark("review:key", { startTime: event.timeStamp, detail: { action } });
    actions[action]();
  };
  useEffect(() => {
    const listener = (event) => keyHandler.current(event);
    window.addEventListener("keydown", listener);
    return () => window.removeEventListener("keydown", listener);
  }, []);

  const project = meta.data && meta.data.project;
  if (meta.error && meta.error.status === 404) { // no such project, or not one of the user's
    return html`<section class="review"><${Errors} errors=${[meta.error]} /></section>`;
  }
  return html`<section class="review">
    <div class="toolbar">
      <${Filters} rounds=${meta.data ? meta.data.rounds : []} value=${filters} onApply=${setFilters} />
      <span class="pending">Pending: <b class="pending-count">${q && q.loaded ? q.pending : "…"}</b></span>
      ${canDecide && html`<${BulkAccept} projectId=${projectId} onError=${errors.add}
        onDone=${(text) => { setNotice(text); reload(); }} />`}
    </div>
    <${Errors} errors=${[...(meta.error ? [meta.error] : []), ...errors.errors]}
      onDismiss=${errors.dismiss} />
    <${Notice} text=${notice} />
    <${RoundNews} watch=${watch} canLoad=${mode === "review"} onLoad=${loadNewRounds} />
    ${orphan && html`<div class="notice orphan-edit" role="status">
      Your strokes are still here.
      <button class="primary" onClick=${saveOrphanAsLabel}>Save them as a new label of image ${orphan.imageId}</button>
      <button onClick=${() => { setOrphan(null); stopEdit(); }}>Discard</button>
    </div>`}
    ${discarding && html`<${Confirm} text="Discard your changes to this mask?" confirmLabel="Discard"
      onConfirm=${stopEdit} onCancel=${() => setDiscarding(false)} />`}
    <div class="review-body">
      <div class="review-main">
        ${dry && html`<div class="card queue-empty" role="status">
          <h2>Nothing to review here</h2>
          <p>No candidate is pending${filtered(filters)
            ? " under these filters: widen the score range or choose every round" : ""}.</p>
          <p class="note">Machine labels to review come from rounds: ${hasRole(role, "admin")
            ? html`start the next one on the <a href=${href("project", projectId)}>overview</a>.`
            : "a project admin starts them."} Decided ones are on the
            <a href=${href("images", projectId)}>images</a> page.</p>
        </div>`}
        <div hidden=${dry}><${Viewer} assets=${assets} waiting=${Boolean(current && !assets)}
          editor=${edit} showOverlay=${overlay} opacity=${opacity} control=${control} /></div>
        ${mode === "edit" && edit && html`<${EditToolbar} session=${edit}
          classNames=${project ? project.class_names : []} onAction=${(name) => actions[name]()}
          onSet=${(change) => { Object.assign(edit, change); rerender(); }} />`}
        ${mode === "reject" && html`<${RejectForm} onSubmit=${onReject}
          onCancel=${() => setMode("review")} />`}
        ${mode === "review" && html`<div class="toolbar decisions">
          <button onClick=${actions.previous}>◀ Previous</button>
          ${canDecide ? html`<button class="primary" disabled=${!current}
            onClick=${once(actions.accept)}>Accept (A)</button>
          <button class="danger" disabled=${!current} onClick=${once(actions.reject)}>Reject (R)</button>
          <button disabled=${!current} onClick=${once(actions.edit)}>Edit (E)</button>
          ${current && current.decision && html`<button class="undo-decision"
            onClick=${undoDecision}>Undo ${current.decision} (U)</button>`}` : html`<span class="role-note">
            Viewing only: deciding needs the reviewer role (yours: ${role || "…"}).</span>`}
          <button onClick=${actions.next}>Next ▶</button>
          <label><input type="checkbox" name="overlay" checked=${overlay}
            onChange=${(e) => setOverlay(e.target.checked)} /> Overlay (O)</label>
          <label>Opacity <input type="range" name="opacity" min="0" max="1" step="0.05"
            value=${opacity} onInput=${(e) => setOpacity(Number(e.target.value))} /></label>
          <button onClick=${actions.zoomOut} title="Zoom out (-)">−</button>
          <button onClick=${actions.fit} title="Fit (0)">Fit</button>
          <button onClick=${actions.zoomIn} title="Zoom in (+)">+</button>
        </div>`}
        <p class="help">${HELP}</p>
      </div>
      <aside class="review-side">
        <${CandidateFacts} candidate=${current} queue=${q} />
        <${QueueList} queue=${q} onPick=${(i) => mode === "review" && q.go(i)} />
      </aside>
    </div>
  </section>`;
}
