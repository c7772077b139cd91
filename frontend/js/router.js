// Hash routes, so the API serves one page and a reload keeps the screen.

const ROUTES = [
  [/^#?\/?$/, () => ({ view: "projects" })],
  [/^#\/projects\/?$/, () => ({ view: "projects" })],
  [/^#\/login$/, () => ({ view: "login" })],
  [/^#\/projects\/(\d+)$/, (m) => ({ view: "project", projectId: Number(m[1]) })],
  [/^#\/projects\/(\d+)\/images\/(\d+)$/, (m) => ({
    view: "image", projectId: Number(m[1]), imageId: Number(m[2]),
  })],
  [/^#\/projects\/(\d+)\/(review|dashboard|images)$/, (m) => ({
    view: m[2], projectId: Number(m[1]),
  })],
];

/** The screen a location hash names; unknown hashes name "missing". */
export function parseHash(hash) {
  for (const [pattern, build] of ROUTES) {
    const match = pattern.exec(hash || "");
    if (match) return build(match);
  }
  return { view: "missing", hash };
}

export function href(view, projectId, imageId) {
  if (view === "projects") return "#/";
  if (view === "login") return "#/login";
  if (view === "project") return `#/projects/${projectId}`;
  if (view === "image") return `#/projects/${projectId}/images/${imageId}`;
  return `#/projects/${projectId}/${view}`;
}
