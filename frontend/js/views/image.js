// One image: its label versions (who, when, from which round; retracted ones marked), the
// image with any version drawn over it, and a new human label for annotators: drawn with the
// brush from the version on screen (or from nothing), or uploaded as a mask file.

import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { loadAssets, releaseAssets } from "../assets.js";
import { Errors, html, Notice, useErrors, useLoad } from "../components.js";
import { bytes, hasRole, percent } from "../format.js";
import { href } from "../router.js";
import { LabelEditor } from "./label_editor.js";
import { Viewer } from "./viewer.js";

const VIEW_BOX = { width: 1200, height: 800 };

function versionState(label, current) {
  if (label.retracted_at) return `retracted by ${label.retracted_by}`;
  return current && label.id === current.id ? "current" : "earlier";
}

/** Why the image leaves use: asked before an admin archives it (the reason is audited). */
function ArchiveForm({ onArchive, onCancel }) {
  const [reason, setReason] = useState("");
  const submit = (event) => { event.preventDefault(); if (reason.trim()) onArchive(reason.trim()); };
  return html`<form class="card archive-form" onSubmit=${submit}>
    <p>Archiving takes this image out of listings, rounds, the review queue and exports. Its
      labels are kept, and an admin can restore it.</p>
    <label>Reason <input name="archive-reason" required maxlength="2000" value=${reason}
      placeholder="e.g. wrong patient" onInput=${(e) => setReason(e.target.value)} /></label>
    <div class="row"><button class="danger" type="submit" disabled=${!reason.trim()}>Archive</button>
      <button type="button" onClick=${onCancel}>Cancel</button></div>
  </form>`;
}

export function ImageScreen({ projectId, imageId }) {
  const loaded = useLoad(async () => {
    const [image, labels, project] = await Promise.all([
      api.image(projectId, imageId), api.labels(projectId, imageId), api.project(projectId),
    ]);
    return { image, labels, project };
  }, [projectId, imageId]);
  const [chosen, setChosen] = useState(null);
  const [assets, setAssets] = useState(null);
  const [notice, setNotice] = useState("");
  const [drawing, setDrawing] = useState(false);
  const [archiving, setArchiving] = useState(false);
  const errors = useErrors();
  const control = useRef({}).current;
  const data = loaded.data;
  const live = data ? data.labels.filter((label) => !label.retracted_at) : [];
  const current = live.length ? live[live.length - 1] : null;
  const shown = chosen ?? (current ? current.version : null);

  useEffect(() => {
    if (!data) return undefined;
    let cancelled = false;
    const base = `/api/v1/projects/${projectId}/images/${imageId}`;
    const { width, height } = data.image;
    loadAssets({
      id: `${imageId}-v${shown ?? 0}`, image_id: imageId, width, height,
      image_url: `${base}/file`, mask_url: shown === null ? null : `${base}/labels/${shown}/mask`,
    }, VIEW_BOX).then(
      (next) => { if (cancelled) releaseAssets(next); else setAssets(next); },
      errors.add,
    );
    return () => { cancelled = true; };
  }, [data, shown]);
  useEffect(() => () => releaseAssets(assets), [assets]);

  const upload = async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    try {
      const { status, body } = await api.uploadLabel(projectId, imageId, file);
      setNotice(status === 200 ? `That mask already is version ${body.version}: nothing added.`
        : `Saved as label version ${body.version}.`);
      setChosen(null);
      loaded.reload();
    } catch (exc) {
      errors.add(exc);
    }
  };

  const archive = async (reason) => {
    try {
      await api.archiveImage(projectId, imageId, reason);
      setArchiving(false);
      setNotice("Archived: left out of rounds, the review queue and exports; labels kept.");
      loaded.reload();
    } catch (exc) {
      errors.add(exc);
    }
  };
  const restore = async () => {
    try {
      await api.restoreImage(projectId, imageId);
      setNotice("Restored: back in use, with its labels as they were.");
      loaded.reload();
    } catch (exc) {
      errors.add(exc);
    }
  };

  const drawn = (label, repeated) => {
    setDrawing(false);
    errors.clear(); // what went wrong before is answered by this save
    setNotice(repeated ? `That mask already is version ${label.version}: nothing added.`
      : `Saved as label version ${label.version}.`);
    setChosen(null);
    loaded.reload();
  };

  if (!data) {
    return html`<section class="image-page"><${Errors} errors=${loaded.error ? [loaded.error] : []} />
      ${loaded.loading && html`<p class="note">Loading…</p>`}</section>`;
  }
  const { image, labels, project } = data;
  return html`<section class="image-page" data-image=${image.id}>
    <p><a href=${href("images", projectId)}>◀ Images</a></p>
    <h1>Image ${image.id}: <span class="file-name">${image.original_filename}</span></h1>
    <${Errors} errors=${errors.errors} onDismiss=${errors.dismiss} />
    <${Notice} text=${notice} />
    ${image.archived_at && html`<div class="notice archived-note" role="status">
      Archived ${new Date(image.archived_at).toLocaleString()} by ${image.archived_by}:
      ${image.archive_reason}. It is left out of listings, rounds, the review queue and
      exports; its labels are kept.
      ${hasRole(project.my_role, "admin") && html` <button onClick=${restore}>Restore it</button>`}
    </div>`}
    <dl class="facts">
      <dt>Size</dt><dd>${image.width}×${image.height}, ${image.format}, ${bytes(image.size_bytes)}</dd>
      <dt>Label</dt><dd class="image-label">${current
        ? `version ${current.version} (${current.source}, by ${current.author})` : "none"}</dd>
    </dl>
    ${labels.length ? html`<table class="list versions">
      <thead><tr><th>Version</th><th>Source</th><th>Author</th><th>Round</th><th>Area</th>
        <th>Made</th><th>State</th></tr></thead>
      <tbody>${labels.slice().reverse().map((label) => html`<tr key=${label.id}
          data-version=${label.version} class=${label.version === shown ? "current" : ""}
          onClick=${() => !drawing && setChosen(label.version)}>
        <td><button class="link">${label.version}</button></td><td>${label.source}</td>
        <td>${label.author}</td><td>${label.round_number ?? "–"}</td>
        <td>${percent(label.foreground_fraction, 1)}</td>
        <td>${new Date(label.created_at).toLocaleString()}</td>
        <td class="state">${versionState(label, current)}</td>
      </tr>`)}</tbody>
    </table>` : html`<p class="note">No label yet.</p>`}
    ${hasRole(project.my_role, "annotator") && !drawing && !image.archived_at && html`<div class="row label-actions">
      <button class="primary" name="draw-label" disabled=${!assets}
        onClick=${() => setDrawing(true)}>${shown === null ? "Draw a label"
          : `Draw a new version from version ${shown}`}</button>
      <label class="upload-label">or upload a mask (PNG, TIFF or BMP, ${image.width}×${image.height}):
        <input type="file" name="label-file" accept="image/png,image/tiff,image/bmp"
          onChange=${upload} /></label>
    </div>`}
    ${drawing && assets ? html`<${LabelEditor} projectId=${projectId} imageId=${imageId}
        assets=${assets} startedFrom=${shown === null ? "an empty mask" : `version ${shown}`}
        currentVersion=${current ? current.version : 0} classNames=${project.class_names}
        onSaved=${drawn} onClose=${() => setDrawing(false)} onError=${errors.add} />`
      : html`<p class="note shown-version">${shown === null ? "No label: the image alone." : `Showing version ${shown}.`}</p>
      <div class="image-viewer"><${Viewer} assets=${assets} waiting=${!assets} editor=${null}
        showOverlay=${true} opacity=${0.45} control=${control} /></div>`}
    ${hasRole(project.my_role, "admin") && !image.archived_at && !drawing && (archiving
      ? html`<${ArchiveForm} onArchive=${archive} onCancel=${() => setArchiving(false)} />`
      : html`<p><button name="archive-image" onClick=${() => setArchiving(true)}>
          Archive this image…</button></p>`)}
  </section>`;
}
