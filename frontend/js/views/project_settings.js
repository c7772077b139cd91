// A project's settings for its admins: description, image-level knowledge per class and the
// auto-accept score. Only what changed is sent; the next round uses it.

import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Errors, html, Notice, useErrors } from "../components.js";
import { projectChanges, settingsFields } from "../project_form.js";

const COLUMNS = [
  ["minRegions", "Fewest regions", "1"],
  ["maxRegions", "Most regions", "1"],
  ["minArea", "Smallest area (%)", "any"],
  ["maxArea", "Largest area (%)", "any"],
];

export function SettingsCard({ project, onSaved }) {
  const [fields, setFields] = useState(() => settingsFields(project));
  const [notice, setNotice] = useState("");
  const [busy, setBusy] = useState(false);
  const errors = useErrors();
  const setClass = (name, key, value) => setFields({
    ...fields, classes: { ...fields.classes, [name]: { ...fields.classes[name], [key]: value } },
  });
  const save = async (event) => {
    event.preventDefault();
    setNotice("");
    let body;
    try {
      body = projectChanges(project, fields);
    } catch (exc) {
      errors.add(exc.message);
      return;
    }
    if (!Object.keys(body).length) { setNotice("Nothing changed."); return; }
    setBusy(true);
    try {
      const saved = await api.updateProject(project.id, body);
      errors.clear();
      setFields(settingsFields(saved));
      setNotice(`Saved (${Object.keys(body).join(", ").replaceAll("_", " ")}); the next round uses it.`);
      onSaved(saved);
    } catch (exc) {
      errors.add(exc);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card settings" onSubmit=${save}>
    <h2>Settings</h2>
    <label>Description <textarea name="settings-description" rows="2" value=${fields.description}
      onInput=${(e) => setFields({ ...fields, description: e.target.value })}></textarea></label>
    <h3>Image-level knowledge</h3>
    <div class="table-scroll"><table class="list knowledge">
      <thead><tr><th>Class</th>${COLUMNS.map(([key, label]) => html`<th key=${key}>${label}</th>`)}</tr></thead>
      <tbody>${project.class_names.map((name) => html`<tr key=${name} data-class=${name}>
        <td>${name}</td>
        ${COLUMNS.map(([key, label, step]) => html`<td key=${key}><input type="number" min="0"
          step=${step} name=${`knowledge-${key}`} aria-label=${`${name}: ${label}`}
          value=${fields.classes[name][key]}
          onInput=${(e) => setClass(name, key, e.target.value)} /></td>`)}
      </tr>`)}</tbody>
    </table></div>
    <label>Accept without review from match score <input name="settings-auto-accept"
      type="number" min="0" max="1" step="0.01" placeholder="off" value=${fields.autoAccept}
      onInput=${(e) => setFields({ ...fields, autoAccept: e.target.value })} /></label>
    <p class="note">Empty: every candidate is reviewed.</p>
    <button class="primary" type="submit" disabled=${busy}>${busy ? "Saving…" : "Save settings"}</button>
    <${Notice} text=${notice} />
    <${Errors} errors=${errors.errors} onDismiss=${errors.dismiss} />
  </form>`;
}
