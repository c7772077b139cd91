// The project's trained models: each round's version with its validation Dice, and its
// checkpoint to download (for `samdsk match --model`, or load_checkpoint in Python).

import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Errors, html, useErrors, useLoad } from "../components.js";
import { download } from "./project_admin.js";

export function ModelsCard({ projectId, refresh }) {
  const models = useLoad(() => api.models(projectId), [projectId, refresh]);
  const [busy, setBusy] = useState(null);
  const errors = useErrors();
  const fetchCheckpoint = async (model) => {
    setBusy(model.number);
    try {
      download(await api.blob(model.checkpoint_url), `project-${projectId}-model-${model.number}.pt`);
    } catch (exc) {
      errors.add(exc);
    } finally {
      setBusy(null);
    }
  };
  const list = models.data || [];
  return html`<div class="card models">
    <h2>Trained models</h2>
    <${Errors} errors=${[...(models.error ? [models.error] : []), ...errors.errors]}
      onDismiss=${errors.dismiss} />
    ${models.data && (list.length === 0
      ? html`<p class="note">None yet: each round trains one.</p>`
      : html`<p class="note">A checkpoint holds the weights and the settings they were trained
          with: <code>samdsk match IMAGE --model FILE --out overlay.png</code> reads it.</p>
        <table class="list numbers">
          <thead><tr><th>Version</th><th>Round</th><th>Validation Dice</th><th>Trained on</th>
            <th>Made</th><th></th></tr></thead>
          <tbody>${list.map((m) => html`<tr key=${m.number} data-model=${m.number}>
            <td>${m.number}</td><td>${m.round_number ?? "–"}</td>
            <td>${m.val_dice === null ? "–" : m.val_dice.toFixed(3)}</td>
            <td>${m.metrics.train_images ?? "–"} images${m.metrics.val_images
              ? `, ${m.metrics.val_images} held out` : ""}</td>
            <td>${new Date(m.created_at).toLocaleString()}</td>
            <td><button class="link" disabled=${busy !== null} onClick=${() => fetchCheckpoint(m)}>
              ${busy === m.number ? "Preparing…" : "Download"}</button></td>
          </tr>`)}</tbody>
        </table>`)}
  </div>`;
}
