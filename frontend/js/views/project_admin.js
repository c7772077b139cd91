// A project's label export and its members (any member; admins change the members).

import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Confirm, Errors, html, useErrors, useLoad } from "../components.js";

const ROLES = ["viewer", "annotator", "reviewer", "admin"];
const FORMATS = [
  ["coco", "COCO JSON (RLE masks)", "json"],
  ["masks", "PNG masks + manifest.csv (zip)", "zip"],
];

/** Save `blob` as a download named `filename`, as a link the user clicked would. */
export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export function ExportCard({ projectId }) {
  const [source, setSource] = useState("");
  const [withImages, setWithImages] = useState(false);
  const [deidentify, setDeidentify] = useState(false);
  const [busy, setBusy] = useState("");
  const errors = useErrors();
  const fetchExport = async (format, suffix) => {
    setBusy(format);
    try {
      const blob = await api.exportLabels(projectId, format, source, {
        includeImages: withImages && format === "masks", deidentify,
      });
      download(blob, `project-${projectId}-labels-${format}${deidentify ? "-deidentified" : ""}.${suffix}`);
    } catch (exc) {
      errors.add(exc);
    } finally {
      setBusy("");
    }
  };
  return html`<div class="card export">
    <h2>Export labels</h2>
    <p class="note">The current label of every labelled image, with its source, version and round.</p>
    <label>Labels <select name="export-source" value=${source}
        onChange=${(e) => setSource(e.target.value)}>
      <option value="">all</option><option value="human">human only</option>
      <option value="machine">accepted machine labels only</option>
      <option value="edited">edited machine labels only</option>
    </select></label>
    <label class="option"><input type="checkbox" name="export-images" checked=${withImages}
      onChange=${(e) => setWithImages(e.target.checked)} /> PNG masks with their images
      (a zip another project or server imports as it is)</label>
    <label class="option"><input type="checkbox" name="export-deidentify" checked=${deidentify}
      onChange=${(e) => setDeidentify(e.target.checked)} /> De-identify: images named by
      number (image-12), without patient details (DICOM tags, EXIF, embedded text)</label>
    <div class="row">${FORMATS.map(([format, label, suffix]) => html`<button key=${format}
        data-export=${format} disabled=${Boolean(busy)} onClick=${() => fetchExport(format, suffix)}>
      ${busy === format ? "Preparing…" : label}</button>`)}</div>
    <${Errors} errors=${errors.errors} onDismiss=${errors.dismiss} />
  </div>`;
}

// Admins add, change and remove members; everyone else sees who works on the project.
export function MembersCard({ projectId, canEdit, onOwnRoleChanged }) {
  const members = useLoad(() => api.members(projectId), [projectId]);
  const me = useLoad(() => api.me(), []);
  const [username, setUsername] = useState("");
  const [role, setRole] = useState("annotator");
  const [asking, setAsking] = useState(null); // {text, work}: giving up one's own admin role
  const [drawn, setDrawn] = useState(0); // bumped to redraw the role choices after a "no"
  const errors = useErrors();
  const change = async (work, own = false) => {
    try {
      await work();
      errors.clear(); // an earlier refusal is answered by what has now worked
      await members.reload();
      if (own) onOwnRoleChanged();
    } catch (exc) {
      errors.add(exc);
    }
  };
  // A site superuser keeps every right whatever the role; anyone else asked to confirm.
  const isMe = (name) => me.data && !me.data.is_superuser &&
    name.toLowerCase() === me.data.username.toLowerCase();
  const changeMember = (name, work, what) => {
    if (!isMe(name)) { change(work); return; }
    setAsking({ text: `${what} You will no longer manage this project's members, rounds or ` +
      "settings, and only another admin can give the role back.", work });
  };
  const add = (event) => {
    event.preventDefault();
    const name = username.trim();
    if (!name) return;
    const work = async () => { await api.setRole(projectId, name, role); setUsername(""); };
    if (role === "admin") change(work);
    else changeMember(name, work, `Make yourself ${role}?`);
  };
  const roleSelect = (value, onChange, name) => html`<select name=${name} value=${value}
      onChange=${(e) => onChange(e.target.value)}>
    ${ROLES.map((r) => html`<option key=${r} value=${r}>${r}</option>`)}</select>`;
  return html`<div class="card members">
    <h2>Members</h2>
    ${asking && html`<${Confirm} text=${asking.text} confirmLabel="Yes, give it up"
      onConfirm=${() => { const { work } = asking; setAsking(null); change(work, true); }}
      onCancel=${() => { setAsking(null); setDrawn((n) => n + 1); }} />`}
    <${Errors} errors=${[...(members.error ? [members.error] : []), ...errors.errors]}
      onDismiss=${errors.dismiss} />
    ${members.data && html`<table class="list">
      <thead><tr><th>User</th><th>Role</th><th></th></tr></thead>
      <tbody>${members.data.map((m) => html`<tr key=${`${m.username}-${drawn}`} data-member=${m.username}>
        <td>${m.username}</td>
        ${canEdit ? html`<td>${roleSelect(m.role, (r) => (r === "admin"
          ? change(() => api.setRole(projectId, m.username, r))
          : changeMember(m.username, () => api.setRole(projectId, m.username, r),
            `Make yourself ${r}?`)), "member-role")}</td>
        <td><button class="link" onClick=${() => changeMember(m.username,
          () => api.removeMember(projectId, m.username), "Leave this project?")}>
          remove</button></td>` : html`<td class="member-role">${m.role}</td><td></td>`}
      </tr>`)}</tbody>
    </table>`}
    ${canEdit && html`<form class="row" onSubmit=${add}>
      <input name="member-username" placeholder="username" value=${username}
        onInput=${(e) => setUsername(e.target.value)} />
      ${roleSelect(role, setRole, "member-new-role")}
      <button type="submit">Add or change</button>
    </form>`}
  </div>`;
}
