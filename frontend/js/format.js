// Numbers as the page shows them. Pure functions.

export function percent(fraction, digits = 0) {
  if (fraction === null || fraction === undefined || Number.isNaN(fraction)) return "–";
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function score(value) {
  return value === null || value === undefined ? "–" : value.toFixed(3);
}

/** "1 h 02 min", "3 min 05 s", "12 s"; "–" when unknown. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const pad = (n) => String(n).padStart(2, "0");
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  return `${s} s`;
}

export function bytes(n) {
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(0)} kB`;
  return `${n} B`;
}

/** The image browser's status word for an image (see ImagePublic). */
export function imageStatus(image) {
  if (image.archived_at) return "archived";
  if (image.label_source === "human") return "human label";
  if (image.label_source === "machine") return "machine label";
  if (image.label_source === "edited") return "edited label";
  if (image.pending_review) return "pending review";
  return "none";
}

/** The stem of a file name: masks are matched to images by it ("a.png" for "a.jpg"). */
export function stem(filename) {
  const base = filename.split(/[\\/]/).pop();
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

const ROLES = ["viewer", "annotator", "reviewer", "admin"];

/** Whether a project `role` (as `my_role` gives it) includes `needed`. */
export function hasRole(role, needed) {
  return ROLES.includes(role) && ROLES.indexOf(role) >= ROLES.indexOf(needed);
}
