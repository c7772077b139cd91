// The review screen's smaller pieces: filters, the reject form, the current candidate's
// facts and the list of loaded candidates.

import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../components.js";
import { percent, score } from "../format.js";

export function Filters({ rounds, value, onApply }) {
  const [draft, setDraft] = useState(value);
  const [problem, setProblem] = useState("");
  const set = (key) => (event) => setDraft({ ...draft, [key]: event.target.value });
  const apply = (event) => {
    event.preventDefault();
    const minScore = Number(draft.minScore);
    const maxScore = Number(draft.maxScore);
    if (!(minScore >= 0 && maxScore <= 1 && minScore <= maxScore)) {
      setProblem("The score range must lie within 0..1, its low end first.");
      return;
    }
    setProblem("");
    onApply({ minScore, maxScore, round: draft.round });
  };
  return html`<form class="filters" onSubmit=${apply}>
    <label>Score from <input name="min-score" type="number" min="0" max="1" step="0.01"
      value=${draft.minScore} onInput=${set("minScore")} /></label>
    <label>to <input name="max-score" type="number" min="0" max="1" step="0.01"
      value=${draft.maxScore} onInput=${set("maxScore")} /></label>
    <label>Round <select name="round" value=${draft.round} onChange=${set("round")}>
      <option value="">all</option>
      ${rounds.map((r) => html`<option key=${r.number} value=${r.number}>${r.number}</option>`)}
    </select></label>
    <button type="submit">Filter</button>
    ${problem && html`<span class="error">${problem}</span>`}
  </form>`;
}

export function RejectForm({ onSubmit, onCancel }) {
  const [reason, setReason] = useState("");
  const input = useRef(null);
  useEffect(() => input.current.focus(), []);
  const submit = (event) => {
    event.preventDefault();
    if (reason.trim()) onSubmit(reason.trim());
  };
  const onKey = (event) => {
    if (event.key === "Escape") onCancel();
  };
  return html`<form class="toolbar reject" onSubmit=${submit}>
    <label>Reason for rejecting <input ref=${input} name="reason" value=${reason} required
      maxlength="2000" placeholder="e.g. includes the stalk" onKeyDown=${onKey}
      onInput=${(e) => setReason(e.target.value)} /></label>
    <button class="danger" type="submit" disabled=${!reason.trim()}>Reject (Enter)</button>
    <button type="button" onClick=${onCancel}>Cancel (Esc)</button>
  </form>`;
}

export function CandidateFacts({ candidate, queue }) {
  if (!queue || !queue.loaded) return html`<p class="note">Loading the queue…</p>`;
  if (!candidate) {
    return html`<p class="note queue-end">No more pending candidates under these filters.</p>`;
  }
  return html`<dl class="facts candidate" data-candidate=${candidate.id}>
    <dt>Candidate</dt><dd>${candidate.id} (rank ${candidate.rank ?? "–"}, round ${candidate.round_number})</dd>
    <dt>Image</dt><dd>${candidate.image_id}</dd>
    <dt>Match score</dt><dd class="score">${score(candidate.score)}</dd>
    <dt>Mask area</dt><dd>${percent(candidate.foreground_fraction, 1)} of the image</dd>
    <dt>Decision</dt><dd class="decision">${candidate.decision
      ? `${candidate.decision}${candidate.busy ? " (sending…)" : ""}` : "pending"}</dd>
  </dl>`;
}

// The list shows a window around the current candidate: re-rendering a thousand rows on
// every key press would cost more than drawing the next image.
const LIST_BEFORE = 8;
const LIST_AFTER = 30;

export function QueueList({ queue, onPick }) {
  if (!queue || !queue.loaded) return null;
  const start = Math.max(0, queue.index - LIST_BEFORE);
  const shown = queue.items.slice(start, queue.index + LIST_AFTER);
  return html`<ol class="queue-list">
    ${start > 0 && html`<li class="muted">${start} earlier…</li>`}
    ${shown.map((c, j) => html`<li key=${c.id} class=${start + j === queue.index ? "current" : ""}
        onClick=${() => onPick(start + j)}>
      <span>${score(c.score)}</span> <span class="muted">#${c.id}</span>
      ${c.decision && html` <span class=${`badge ${c.decision}`}>${c.decision}</span>`}
    </li>`)}
    ${(queue.cursor || queue.items.length > queue.index + LIST_AFTER) &&
      html`<li class="muted">more as you go…</li>`}
  </ol>`;
}
