// The image browser: every image with its label status, and drag-and-drop upload of images,
// of human masks (matched to images by file name) and of data set zips, with a progress bar.

import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { Errors, html, ProgressBar, useLoad } from "../components.js";
import { bytes, hasRole, imageStatus } from "../format.js";
import { href } from "../router.js";
import { allImages, matchMasks, sendAll } from "../uploads.js";

const PAGE = 50;
const THUMBNAIL_POLL_MS = 2000;

function Thumb({ projectId, image }) {
  const [url, setUrl] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!image.has_thumbnail) return undefined;
    let made = null;
    api.thumbnail(projectId, image.id).then(
      (blob) => { made = URL.createObjectURL(blob); setUrl(made); }, setError);
    return () => made && URL.revokeObjectURL(made);
  }, [image.id, image.has_thumbnail]);
  if (error) return html`<span class="error">${error.message}</span>`;
  if (!image.has_thumbnail) return html`<span class="muted">thumbnail pending</span>`;
  return url ? html`<img class="thumb" src=${url} alt=${image.original_filename} />` : null;
}

function DropZone({ label, name, accept, onFiles, disabled }) {
  const [over, setOver] = useState(false);
  const onDrop = (event) => {
    event.preventDefault();
    setOver(false);
    if (!disabled) onFiles([...event.dataTransfer.files]);
  };
  return html`<div class=${`dropzone ${over ? "over" : ""}`} data-drop=${name}
      onDragOver=${(e) => { e.preventDefault(); setOver(true); }}
      onDragLeave=${() => setOver(false)} onDrop=${onDrop}>
    <p>${label}</p>
    <label class="button">Choose files<input type="file" name=${name} multiple accept=${accept}
      disabled=${disabled} hidden onChange=${(e) => { onFiles([...e.target.files]); e.target.value = ""; }} /></label>
  </div>`;
}

/** A result's line: the API names the file in its message too, but it is said once. */
export function resultLine(result) {
  return `${result.name}: ${result.text.startsWith(`${result.name}: `)
    ? result.text.slice(result.name.length + 2) : result.text}`;
}

function UploadReport({ state }) {
  if (!state) return null;
  const failed = state.results.filter((r) => !r.ok);
  // Refused files first: in a long list they must not hide below the ones that went in.
  const listed = [...failed, ...state.results.filter((r) => r.ok)];
  return html`<div class="upload-report">
    <${ProgressBar} fraction=${state.progress} label="upload progress" />
    <p class="upload-summary">${state.done ? "Finished" : "Uploading"}:${" "}
      ${state.results.length} of ${state.total} sent, ${failed.length} refused.</p>
    <ul class="upload-results">${listed.map((r, i) => html`<li key=${i}
      class=${r.ok ? "ok" : "error"}>${resultLine(r)}</li>`)}</ul>
  </div>`;
}

/** What an import added, in the words of the images page. */
export function describeImport(counts) {
  const parts = [`${counts.images_created} new image${counts.images_created === 1 ? "" : "s"}`];
  if (counts.images_existing) parts.push(`${counts.images_existing} already there`);
  parts.push(`${counts.labels_created} new label${counts.labels_created === 1 ? "" : "s"}`);
  if (counts.labels_unchanged) parts.push(`${counts.labels_unchanged} labels unchanged`);
  if (counts.without_mask) parts.push(`${counts.without_mask} without a label`);
  return `imported: ${parts.join(", ")}`;
}

// The status filter's choices: [value, label, the listing's parameters].
const SHOWN = [
  ["", "all", {}],
  ["none", "without a label", { label: "none" }],
  ["review", "pending review", { pending_review: "true" }],
  ["human", "human label", { label: "human" }],
  ["machine", "accepted machine label", { label: "machine" }],
  ["edited", "edited machine label", { label: "edited" }],
  ["archived", "archived", { archived: "true" }],
];

function ListingFilters({ value, onChange }) {
  const [name, setName] = useState(value.filename);
  const submit = (event) => { event.preventDefault(); onChange({ ...value, filename: name.trim() }); };
  return html`<form class="row listing-filters" onSubmit=${submit}>
    <label>Show <select name="image-status" value=${value.shown}
        onChange=${(e) => onChange({ ...value, shown: e.target.value })}>
      ${SHOWN.map(([key, label]) => html`<option key=${key} value=${key}>${label}</option>`)}
    </select></label>
    <label>File name <input name="image-filename" value=${name} placeholder="part of a name"
      onInput=${(e) => setName(e.target.value)} /></label>
    <label>Order <select name="image-sort" value=${value.sort}
        onChange=${(e) => onChange({ ...value, sort: e.target.value })}>
      <option value="id">oldest first</option><option value="-id">newest first</option>
      <option value="filename">file name</option>
    </select></label>
    <button type="submit">Find</button>
  </form>`;
}

function listingParameters({ shown, filename, sort }) {
  const [, , parameters] = SHOWN.find(([key]) => key === shown) || SHOWN[0];
  return { ...parameters, sort, filename: filename || undefined };
}

export function ImagesScreen({ projectId }) {
  const [offset, setOffset] = useState(0);
  const [filters, setFilters] = useState({ shown: "", filename: "", sort: "id" });
  const listing = useLoad(
    () => api.images(projectId, offset, PAGE, listingParameters(filters)),
    [projectId, offset, filters],
  );
  const project = useLoad(() => api.project(projectId), [projectId]);
  const role = project.data ? project.data.my_role : null;
  const [upload, setUpload] = useState(null);
  const [problem, setProblem] = useState(null);

  const run = async (jobs, describeOk, unmatched = []) => {
    setProblem(null);
    const base = unmatched.map((u) => ({ name: u.file.name, ok: false, text: u.why }));
    setUpload({ progress: 0, results: base, total: jobs.length + base.length, done: false });
    await sendAll(jobs, describeOk, ({ progress, results }) => setUpload({
      progress, results: [...base, ...results], total: jobs.length + base.length, done: false,
    }));
    setUpload((s) => ({ ...s, progress: 1, done: true }));
    listing.reload();
  };
  const sendImages = (files) => run(
    files.map((file) => ({
      name: file.name, size: file.size,
      send: (progress) => api.uploadImage(projectId, file, progress),
    })),
    ({ body }) => (body.created ? `added as image ${body.image.id}`
      : `already there (image ${body.image.id}${body.image.archived_at ? ", archived" : ""})`),
  );
  const sendSets = (files) => run(
    files.map((file) => ({
      name: file.name, size: file.size,
      send: (progress) => api.importZip(projectId, file, progress),
    })),
    ({ body }) => describeImport(body),
  );
  const sendMasks = async (files) => {
    try {
      const { pairs, unmatched } = matchMasks(files, await allImages(projectId));
      await run(pairs.map(({ file, image }) => ({
        name: file.name, size: file.size,
        send: (progress) => api.uploadLabel(projectId, image.id, file, progress),
      })), ({ body }) => `label version ${body.version} of image ${body.image_id}`, unmatched);
    } catch (exc) {
      setProblem(exc);
    }
  };

  const busy = upload && !upload.done;
  const page = listing.data;
  // Thumbnails are made by a worker after the upload; look again until all are there.
  const waiting = page && page.data.some((image) => !image.has_thumbnail);
  useEffect(() => {
    if (!waiting) return undefined;
    const timer = setTimeout(listing.reload, THUMBNAIL_POLL_MS);
    return () => clearTimeout(timer);
  }, [page, waiting]);
  return html`<section class="images">
    <h1>Images</h1>
    ${hasRole(role, "annotator") ? html`<div class="drops">
      <${DropZone} name="images" label="Drop images here (PNG, JPEG, TIFF, BMP, DICOM)"
        accept="image/*,.dcm" onFiles=${sendImages} disabled=${busy} />
      <${DropZone} name="masks" label="Drop human masks here: each goes to the image with the same file name"
        accept="image/png,image/tiff,image/bmp" onFiles=${sendMasks} disabled=${busy} />
      <${DropZone} name="datasets" label="Drop a data set zip here: images/ with masks/, or a COCO JSON file with its images"
        accept=".zip,application/zip" onFiles=${sendSets} disabled=${busy} />
    </div>` : role && html`<p class="role-note">Viewing only: uploading images and masks needs
      the annotator role (yours: ${role}).</p>`}
    <${UploadReport} state=${upload} />
    <${Errors} errors=${[listing.error, problem].filter(Boolean)} />
    <${ListingFilters} value=${filters} onChange=${(f) => { setOffset(0); setFilters(f); }} />
    ${page && html`<p class="image-count">${page.count} image${page.count === 1 ? "" : "s"}.
      ${offset > 0 && html`<button onClick=${() => setOffset(Math.max(0, offset - PAGE))}>◀ Previous</button>`}
      ${offset + PAGE < page.count && html`<button onClick=${() => setOffset(offset + PAGE)}>Next ▶</button>`}</p>
    <table class="list image-table">
      <thead><tr><th></th><th>Image</th><th>File</th><th>Size</th><th>Status</th></tr></thead>
      <tbody>${page.data.map((image) => html`<tr key=${image.id} data-image=${image.id}>
        <td><${Thumb} projectId=${projectId} image=${image} /></td>
        <td><a href=${href("image", projectId, image.id)}>${image.id}</a></td>
        <td class="file-name"><a href=${href("image", projectId, image.id)}>${image.original_filename}</a></td>
        <td>${image.width}×${image.height}, ${bytes(image.size_bytes)}</td>
        <td><span class=${`badge status-${imageStatus(image).replace(" ", "-")}`}>${imageStatus(image)}</span></td>
      </tr>`)}</tbody>
    </table>`}
  </section>`;
}
