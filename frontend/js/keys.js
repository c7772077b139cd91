// Keyboard shortcuts of the review screen: which action a key press means in each mode.
// Pure, so the whole map is testable and listed in one place for the help line.

const REVIEW = {
  a: "accept", r: "reject", e: "edit", u: "undoDecision", o: "toggleOverlay",
  ArrowRight: "next", ArrowDown: "next", ArrowLeft: "previous", ArrowUp: "previous",
  "+": "zoomIn", "=": "zoomIn", "-": "zoomOut", "0": "fit",
};

const EDIT = {
  b: "brush", x: "eraser", f: "fillHoles", o: "toggleOverlay", "[": "smaller", "]": "larger",
  Enter: "save", s: "save", Escape: "cancel",
  "+": "zoomIn", "=": "zoomIn", "-": "zoomOut", "0": "fit",
};

// What a held key must not repeat: one press, one decision on a candidate the reviewer saw.
const ONCE = new Set(["accept", "reject", "edit", "undoDecision", "save", "cancel"]);

/** The action for a keydown in `mode` ("review" or "edit"), or null. */
export function actionFor(event, mode) {
  const action = keyAction(event, mode);
  return action && event.repeat && ONCE.has(action) ? null : action;
}

function keyAction(event, mode) {
  const ctrl = event.ctrlKey || event.metaKey;
  if (ctrl) {
    const key = event.key.toLowerCase();
    if (mode !== "edit") return key === "z" && !event.shiftKey ? "undoDecision" : null;
    if (key === "z") return event.shiftKey ? "redo" : "undo";
    if (key === "y") return "redo";
    return null;
  }
  if (event.altKey) return null;
  const table = mode === "edit" ? EDIT : REVIEW;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  return table[key] || null;
}

const SLIDER_KEYS = new Set(["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End",
  "PageUp", "PageDown"]);

/** Key presses typed into a text field belong to the field, not to the shortcuts; so do the
 * keys a focused slider moves by (letters still act, so a reviewer who just set the opacity
 * goes on deciding). */
export function isTyping(target, key = "") {
  if (!target || !target.tagName) return false;
  const tag = target.tagName.toLowerCase();
  if (tag === "textarea" || tag === "select" || target.isContentEditable) return true;
  if (tag !== "input") return false;
  if (target.type === "range") return SLIDER_KEYS.has(key);
  return !["checkbox", "button", "radio"].includes(target.type);
}
