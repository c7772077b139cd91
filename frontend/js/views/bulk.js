// "Accept all above score X": first ask the API how many that is, then confirm, then accept.

import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Confirm, html } from "../components.js";

export function BulkAccept({ projectId, onDone, onError }) {
  const [threshold, setThreshold] = useState("0.9");
  const [asking, setAsking] = useState(null); // {threshold, count} while the dialog is open
  const [busy, setBusy] = useState(false);

  const ask = async () => {
    const value = Number(threshold);
    if (!(value >= 0 && value <= 1) || threshold.trim() === "") {
      onError(`The score must be a number from 0 to 1, not "${threshold}".`);
      return;
    }
    setBusy(true);
    try {
      // The same selection as accept-above: every round, pending, score >= threshold, not
      // empty (a "nothing here" label is decided one image at a time).
      const page = await api.queue(projectId, { minScore: value, empty: false, limit: 1 });
      setAsking({ threshold: value, count: page.count });
    } catch (exc) {
      onError(exc);
    } finally {
      setBusy(false);
    }
  };

  const accept = async () => {
    const { threshold: value } = asking;
    setAsking(null);
    setBusy(true);
    try {
      const result = await api.acceptAbove(projectId, value);
      onDone(`Accepted ${result.accepted} candidate${result.accepted === 1 ? "" : "s"} ` +
        `scoring at least ${value}.`);
    } catch (exc) {
      onError(exc);
    } finally {
      setBusy(false);
    }
  };

  return html`<div class="bulk">
    <label>Accept all above score
      <input name="bulk-threshold" type="number" min="0" max="1" step="0.01" value=${threshold}
        onInput=${(e) => setThreshold(e.target.value)} /></label>
    <button disabled=${busy} onClick=${ask}>Accept all above…</button>
    ${asking && html`<${Confirm}
      text=${asking.count === 0
        ? `No pending candidate scores ${asking.threshold} or more.`
        : `Accept ${asking.count} pending candidate${asking.count === 1 ? "" : "s"} with a match ` +
          `score of at least ${asking.threshold} (all rounds; empty annotations stay for ` +
          `review)?`}
      confirmLabel=${asking.count === 0 ? "OK" : `Accept ${asking.count}`}
      onConfirm=${asking.count === 0 ? () => setAsking(null) : accept}
      onCancel=${() => setAsking(null)} />`}
  </div>`;
}
