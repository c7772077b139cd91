// Hash routes, so the API serves one page and a reload keeps the screen.

const ROUTES = [
  [/^#?\/?$/, () => ({ view: "projects" })],
  [/^#\/projects\/?$/, () => ({ view: "projects" })],
  [/^#\/login$/, () => ({ view: "login" })],
  [/^#\/account$/, () => ({ view: "account" })],
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
  if (view === "account") return "#/account";
  if (view === "project") return `#/projects/${projectId}`;
  if (view === "image") return `#/projects/${projectId}/images/${imageId}`;
  return `#/projects/${projectId}/${view}`;
}

// A screen with unsaved work (strokes on a mask) names what to ask before the page moves to
// another screen; `beforeunload` covers reloads and closing the tab, this covers the links,
// the header's tabs and the browser's Back and Forward, which only change the hash.
let leaveQuestion = null;
let agreedTo = null; // the address a "yes" was given for, so that its hashchange asks no more

/** While `question()` returns text, moving to another screen asks it first. Returns the
 * function that stops asking. */
export function guardLeaving(question) {
  leaveQuestion = question;
  return () => { if (leaveQuestion === question) leaveQuestion = null; };
}

function agreedToLeave() {
  const question = leaveQuestion && leaveQuestion();
  return !question || window.confirm(question);
}

/** Ask before a click on an in-page link leaves unsaved work; a "no" cancels the click, so
 * the address and the history stay as they were. Returns the function that stops it. */
export function askBeforeLinksLeave() {
  const onClick = (event) => {
    const link = event.target.closest ? event.target.closest("a[href^='#']") : null;
    // A link to where the page is, or one opened in another tab or window, leaves nothing.
    const elsewhere = event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0 ||
      (link && link.target && link.target !== "_self");
    if (!link || elsewhere || link.getAttribute("href") === location.hash) return;
    if (agreedToLeave()) agreedTo = link.getAttribute("href");
    else event.preventDefault();
  };
  document.addEventListener("click", onClick, true);
  return () => document.removeEventListener("click", onClick, true);
}

/** Whether the hash may stay where Back, Forward or a typed address just moved it from
 * `from`: true when nothing is unsaved or the user agrees to discard it; otherwise the
 * address goes back to `from`. */
export function mayLeave(from) {
  const agreed = agreedTo !== null && location.hash === agreedTo;
  agreedTo = null;
  if (agreed || agreedToLeave()) return true;
  history.replaceState(history.state, "", from);
  return false;
}
