// Edit mode: a private copy of the candidate's mask that brush and eraser strokes change,
// with undo and redo, hole filling, and the PNG that is saved as the corrected label.

import { EditHistory } from "../history.js";
import { html } from "../components.js";
import { fillHoles, fullRegion, paintStroke, rgbaFromClasses } from "../mask.js";

export const MIN_BRUSH = 1;
export const MAX_BRUSH = 200;

/** A new edit of `assets`' mask; `onChange` runs after each finished step. */
export function createEditSession(assets, onChange) {
  const { width, height } = assets;
  return {
    classes: assets.classes.slice(),
    width,
    height,
    history: new EditHistory(width, height),
    tool: "brush",
    value: 1,
    // A brush about 1/40 of the image: a few strokes cover a polyp's edge at any resolution.
    size: Math.max(4, Math.round(Math.max(width, height) / 40)),
    before: null,
    saving: false,
    begin() { this.before = this.classes.slice(); },
    paint(from, to) {
      const value = this.tool === "eraser" ? 0 : this.value;
      return paintStroke(this.classes, width, height, from, to, this.size, value);
    },
    end() {
      if (!this.before) return null;
      const region = this.history.commit(this.before, this.classes);
      this.before = null;
      onChange();
      return region;
    },
    fillHoles() {
      this.begin();
      fillHoles(this.classes, width, height, this.value);
      return this.end() && fullRegion(width, height);
    },
    undo() { const r = this.history.undo(this.classes); onChange(); return r; },
    redo() { const r = this.history.redo(this.classes); onChange(); return r; },
    resize(factor) {
      this.size = Math.round(Math.min(MAX_BRUSH, Math.max(MIN_BRUSH, this.size * factor)));
      onChange();
    },
  };
}

/** The edited mask as a PNG the API accepts (grey levels are the class indices). */
export function maskPng(session) {
  const { classes, width, height } = session;
  const canvas = new OffscreenCanvas(width, height);
  canvas.getContext("2d").putImageData(new ImageData(rgbaFromClasses(classes), width, height), 0, 0);
  return canvas.convertToBlob({ type: "image/png" });
}

export function EditToolbar({ session, classNames, onAction, onSet, saveLabel = "Save corrected label" }) {
  const tool = (name, label, key) => html`<button class=${session.tool === name ? "on" : ""}
    aria-pressed=${session.tool === name} onClick=${() => onSet({ tool: name })}>${label} (${key})</button>`;
  return html`<div class="toolbar edit-tools">
    ${tool("brush", "Brush", "B")}
    ${tool("eraser", "Eraser", "X")}
    <label>Size <input type="range" name="brush-size" min=${MIN_BRUSH} max=${MAX_BRUSH}
      value=${session.size} onInput=${(e) => onSet({ size: Number(e.target.value) })} />
      <span class="brush-size">${session.size} px</span></label>
    ${classNames.length > 1 && html`<label>Class <select value=${session.value}
        onChange=${(e) => onSet({ value: Number(e.target.value) })}>
      ${classNames.map((name, i) => html`<option value=${i + 1}>${name}</option>`)}
    </select></label>`}
    <button disabled=${!session.history.canUndo} onClick=${() => onAction("undo")}>Undo (Ctrl-Z)</button>
    <button disabled=${!session.history.canRedo} onClick=${() => onAction("redo")}>Redo (Ctrl-Y)</button>
    <button onClick=${() => onAction("fillHoles")}>Fill holes (F)</button>
    <button class="primary" disabled=${session.saving} onClick=${() => onAction("save")}>
      ${session.saving ? "Saving…" : `${saveLabel} (Enter)`}</button>
    <button disabled=${session.saving} onClick=${() => onAction("cancel")}>Cancel (Esc)</button>
  </div>`;
}
