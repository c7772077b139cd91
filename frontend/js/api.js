// The one module that knows the API's URLs. Every call resolves to the parsed answer or
// rejects with an ApiError carrying the API's own message, so a view can show it verbatim.

const BASE = "/api/v1";
const TOKEN_KEY = "samdsk.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const token = {
  get: () => localStorage.getItem(TOKEN_KEY),
  set: (value) => localStorage.setItem(TOKEN_KEY, value),
  clear: () => localStorage.removeItem(TOKEN_KEY),
};

// A 401 anywhere means the session is over; the app listens and returns to the login screen.
export function sessionEnded(message) {
  token.clear();
  window.dispatchEvent(new CustomEvent("samdsk:logged-out", { detail: message }));
}

function errorFrom(status, statusText, body) {
  const error = body && body.error;
  if (error && error.message) return new ApiError(status, error.code, error.message);
  if (body && body.detail) return new ApiError(status, "error", String(body.detail));
  return new ApiError(status, "http_error", `HTTP ${status} ${statusText}`.trim());
}

async function send(method, path, { json, form, raw = false } = {}) {
  const headers = {};
  const bearer = token.get();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(BASE + path, { method, headers, body });
  } catch (exc) {
    throw new ApiError(0, "network", `The server could not be reached (${exc.message}).`);
  }
  if (!response.ok) {
    const parsed = await response.json().catch(() => null);
    const error = errorFrom(response.status, response.statusText, parsed);
    if (response.status === 401 && bearer) sessionEnded(error.message);
    throw error;
  }
  if (raw) return response.blob();
  return response.status === 204 ? null : response.json();
}

// Uploads go through XMLHttpRequest because fetch reports no upload progress.
function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + path);
    const bearer = token.get();
    if (bearer) xhr.setRequestHeader("Authorization", `Bearer ${bearer}`);
    xhr.upload.onprogress = (event) => onProgress && onProgress(event.loaded, event.total);
    xhr.onerror = () => reject(new ApiError(0, "network", "The upload could not reach the server."));
    xhr.onload = () => {
      let parsed = null;
      try { parsed = JSON.parse(xhr.responseText); } catch { /* not JSON: reported below */ }
      if (xhr.status >= 200 && xhr.status < 300) return resolve({ status: xhr.status, body: parsed });
      const error = errorFrom(xhr.status, xhr.statusText, parsed);
      if (xhr.status === 401 && bearer) sessionEnded(error.message);
      reject(error);
    };
    xhr.send(form);
  });
}

function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "");
  return pairs.length ? "?" + new URLSearchParams(pairs).toString() : "";
}

function fileForm(name, file) {
  const form = new FormData();
  form.append(name, file, file.name || "mask.png");
  return form;
}

const project = (id) => `/projects/${id}`;

export const api = {
  login: (username, password) => send("POST", "/auth/login", { json: { username, password } }),
  logout: () => send("POST", "/auth/logout"),
  me: () => send("GET", "/users/me"),
  changePassword: (current, next) => send("POST", "/users/me/password", {
    json: { current_password: current, new_password: next },
  }),
  tokens: () => send("GET", "/tokens"),
  createToken: (name, expiresAt = null) => send("POST", "/tokens", {
    json: expiresAt ? { name, expires_at: expiresAt } : { name },
  }),
  revokeToken: (tokenId) => send("DELETE", `/tokens/${tokenId}`),
  health: () => send("GET", "/health"),

  projects: () => send("GET", "/projects?limit=500"),
  createProject: (body) => send("POST", "/projects", { json: body }),
  project: (id) => send("GET", project(id)),
  updateProject: (id, changes) => send("PATCH", project(id), { json: changes }),
  members: (id) => send("GET", `${project(id)}/members`),
  setRole: (id, username, role) =>
    send("PUT", `${project(id)}/members/${encodeURIComponent(username)}`, { json: { role } }),
  removeMember: (id, username) =>
    send("DELETE", `${project(id)}/members/${encodeURIComponent(username)}`),
  exportLabels: (id, format, source, { includeImages = false, deidentify = false } = {}) =>
    send("GET", `${project(id)}/export` + query({
      format, source,
      include_images: includeImages ? "true" : undefined,
      deidentify: deidentify ? "true" : undefined,
    }), { raw: true }),
  status: (id) => send("GET", `${project(id)}/status`),
  models: (id) => send("GET", `${project(id)}/models`),

  rounds: (id) => send("GET", `${project(id)}/rounds`),
  round: (id, n) => send("GET", `${project(id)}/rounds/${n}`),
  startRound: (id, settings) => send("POST", `${project(id)}/rounds`, { json: settings }),
  cancelRound: (id, n) => send("POST", `${project(id)}/rounds/${n}/cancel`),
  statistics: (id, n) => send("GET", `${project(id)}/rounds/${n}/statistics`),

  queue: (id, { round, minScore, maxScore, empty, cursor, limit = 50 } = {}) =>
    send("GET", `${project(id)}/review-queue` + query({
      round, min_score: minScore, max_score: maxScore, empty, cursor, limit,
    })),
  accept: (id, candidateId) => send("POST", `${project(id)}/candidates/${candidateId}/accept`),
  undo: (id, candidateId) => send("POST", `${project(id)}/candidates/${candidateId}/undo`),
  reject: (id, candidateId, reason) =>
    send("POST", `${project(id)}/candidates/${candidateId}/reject`, { json: { reason } }),
  edit: (id, candidateId, png) =>
    send("POST", `${project(id)}/candidates/${candidateId}/edit`, { form: fileForm("file", png) }),
  acceptAbove: (id, threshold) =>
    send("POST", `${project(id)}/review-queue/accept-above`, { json: { threshold } }),

  image: (id, imageId) => send("GET", `${project(id)}/images/${imageId}`),
  labels: (id, imageId) => send("GET", `${project(id)}/images/${imageId}/labels`),
  // `only`: the listing's filters and order ({label, pending_review, filename, sort})
  images: (id, offset = 0, limit = 50, only = {}) =>
    send("GET", `${project(id)}/images` + query({ ...only, offset, limit })),
  uploadImage: (id, file, onProgress) =>
    upload(`${project(id)}/images`, fileForm("file", file), onProgress),
  uploadLabel: (id, imageId, file, onProgress, expectedVersion = null) => {
    const form = fileForm("file", file);
    if (expectedVersion !== null) form.append("expected_version", String(expectedVersion));
    return upload(`${project(id)}/images/${imageId}/labels`, form, onProgress);
  },
  archiveImage: (id, imageId, reason) =>
    send("POST", `${project(id)}/images/${imageId}/archive`, { json: { reason } }),
  restoreImage: (id, imageId) => send("POST", `${project(id)}/images/${imageId}/restore`),
  importZip: (id, file, onProgress) =>
    upload(`${project(id)}/import`, fileForm("file", file), onProgress),
  thumbnail: (id, imageId) => send("GET", `${project(id)}/images/${imageId}/thumbnail`, { raw: true }),

  // Candidates carry their own image and mask URLs (absolute paths under /api/v1).
  blob: (url) => send("GET", url.startsWith(BASE) ? url.slice(BASE.length) : url, { raw: true }),
};
