// The review screen's smaller pieces: filters, the reject form, the current candidate's
// facts, the list of loaded candidates and the watch on the project's rounds.

import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { html } from "../components.js";
import { percent, score } from "../format.js";

// How often the review page asks whether a round has started or finished: often enough
// that a reviewer hears of new candidates within seconds, seldom enough to cost nothing.
const ROUND_POLL_MS = 5000;

// The rounds that finished since ``known`` (the rounds as the queue was loaded) and the one
// now queued or running, if any.
export function useRoundWatch(projectId, known) {
  const [rounds, setRounds] = useState(null);
  useEffect(() => {
    if (!known) return undefined;
    let stopped = false;
    let timer = null;
    const poll = async () => {
      try {
        const latest = await api.rounds(projectId);
        if (!stopped) setRounds(latest);
      } catch (_) {
        // a missed poll is simply tried again; the page's own requests report real trouble
      }
      if (!stopped) timer = setTimeout(poll, ROUND_POLL_MS);
    };
    timer = setTimeout(poll, ROUND_POLL_MS);
    return () => { stopped = true; clearTimeout(timer); };
  }, [projectId, known]);
  if (!known || !rounds) return { finished: [], active: null };
  const before = new Map(known.map((r) => [r.number, r.status]));
  const finished = rounds.filter(
    (r) => r.status === "succeeded" && before.get(r.number) !== "succeeded");
  const active = rounds.find((r) => r.status === "queued" || r.status === "running") || null;
  return { finished, active };
}

export function RoundNews({ watch, canLoad, onLoad }) {
  const { finished, active } = watch;
  const added = finished.reduce((sum, r) => sum + Number((r.counts || {}).candidates || 0), 0);
  const names = finished.map((r) => r.number).join(", ");
  return html`
    ${finished.length > 0 && html`<div class="notice new-round" role="status">
      Round${finished.length > 1 ? "s" : ""} ${names} finished with ${added} new
      candidate${added === 1 ? "" : "s"}.
      <button class="primary" onClick=${onLoad} disabled=${!canLoad}
        title=${canLoad ? "Reload the queue" : "Save or cancel your edit first"}>Load them</button>
    </div>`}
    ${active && html`<p class="note round-active">${
      `Round ${active.number} ${active.status}: ${active.stage} ${percent(active.progress)}`}</p>`}`;
}

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
        tabindex="0" role="button" aria-current=${start + j === queue.index ? "true" : undefined}
        aria-label=${`candidate ${c.id}, match score ${score(c.score)}${c.decision ? `, ${c.decision}` : ""}`}
        onClick=${() => onPick(start + j)}
        onKeyDown=${(e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onPick(start + j); } }}>
      <span>${score(c.score)}</span> <span class="muted">#${c.id}</span>
      ${c.decision && html` <span class=${`badge ${c.decision}`}>${c.decision}</span>`}
    </li>`)}
    ${(queue.cursor || queue.items.length > queue.index + LIST_AFTER) &&
      html`<li class="muted">more as you go…</li>`}
  </ol>`;
}
