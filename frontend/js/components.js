// Small shared pieces of the views: error and notice lines, a progress bar, a confirmation
// dialog, and a hook that loads data and keeps its error.

import { h } from "preact";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);

/** The words of any failure: the API's message, or the browser's. */
export function describe(error) {
  if (!error) return "";
  if (typeof error === "string") return error;
  return error.message || String(error);
}

/** Errors are shown until dismissed, so none goes by unseen. */
export function Errors({ errors, onDismiss }) {
  if (!errors || errors.length === 0) return null;
  return html`<div class="errors" role="alert">
    ${errors.map((error, i) => html`<p class="error" key=${i}>
      <span class="error-text">${describe(error)}</span>
      ${onDismiss && html`<button class="link" onClick=${() => onDismiss(i)}>dismiss</button>`}
    </p>`)}
  </div>`;
}

/** A list of errors with add and dismiss. */
export function useErrors() {
  const [errors, setErrors] = useState([]);
  const add = useCallback((error) => setErrors((list) => [...list, describe(error)]), []);
  const dismiss = useCallback((i) => setErrors((list) => list.filter((_, j) => j !== i)), []);
  const clear = useCallback(() => setErrors([]), []);
  return { errors, add, dismiss, clear };
}

export function Notice({ text }) {
  return text ? html`<p class="notice" role="status">${text}</p>` : null;
}

export function ProgressBar({ fraction, label }) {
  const value = Math.max(0, Math.min(1, fraction || 0));
  return html`<div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"
      aria-valuenow=${Math.round(value * 100)} aria-label=${label}>
    <div class="progress-fill" style=${{ width: `${value * 100}%` }}></div>
  </div>`;
}

/** A modal question; Enter confirms, Escape cancels. */
export function Confirm({ text, confirmLabel, onConfirm, onCancel }) {
  const button = useRef(null);
  const dialog = useRef(null);
  const handlers = useRef({});
  handlers.current = { onConfirm, onCancel };
  // Keys are taken on the window, ahead of the page's own: a key pressed before the default
  // button has focus (or after focus left the dialog) still reaches the dialog. Esc cancels;
  // Enter outside the dialog's buttons confirms, as the focused default button would. A layout
  // effect: it runs as the dialog is put in the page, so no key pressed once the dialog is
  // there can fall between its drawing and its listening (a plain effect waits a frame).
  useLayoutEffect(() => {
    if (button.current) button.current.focus();
    const onKey = (event) => {
      const inside = dialog.current && dialog.current.contains(document.activeElement);
      if (event.key === "Escape") handlers.current.onCancel();
      else if (event.key === "Enter" && !inside) handlers.current.onConfirm();
      else return;
      event.preventDefault();
      event.stopPropagation();
    };
    window.addEventListener("keydown", onKey, true);
    return () => window.removeEventListener("keydown", onKey, true);
  }, []);
  return html`<div class="backdrop">
    <div class="dialog" role="dialog" aria-modal="true" ref=${dialog}>
      <p>${text}</p>
      <div class="row">
        <button ref=${button} class="primary" onClick=${onConfirm}>${confirmLabel}</button>
        <button onClick=${onCancel}>Cancel</button>
      </div>
    </div>
  </div>`;
}

/** Run `load` when `deps` change; returns {data, error, loading, reload}. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const generation = useRef(0);
  const run = useCallback(() => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true }));
    return load().then(
      (data) => mine === generation.current && setState({ data, error: null, loading: false }),
      (error) => mine === generation.current && setState({ data: null, error, loading: false }),
    );
  }, deps);
  useEffect(() => { run(); }, [run]);
  return { ...state, reload: run };
}
