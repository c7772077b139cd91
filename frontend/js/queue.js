// The review queue as the page holds it: pages of pending candidates (highest match score
// first), where the reviewer is, the decisions made here, and decoded assets of the
// candidates around the current one, so that the next one is ready before it is asked for.

import { api } from "./api.js";
import { loadAssets, releaseAssets } from "./assets.js";

const PAGE = 50;
const AHEAD = 3; // candidates decoded ahead of the current one
const BEHIND = 1;

export class ReviewQueue {
  /** `box`: the viewer's size in device pixels, for the previews (see loadAssets). */
  constructor(projectId, filters, onChange, box) {
    this.projectId = projectId;
    this.filters = filters;
    this.onChange = onChange;
    this.box = box;
    this.items = [];
    this.index = 0;
    this.count = 0;
    this.cursor = null;
    this.loaded = false;
    this.assets = new Map(); // candidate id -> {promise, value, error}
    this.paging = null;
  }

  async load() {
    const page = await api.queue(this.projectId, { ...this.filters, limit: PAGE });
    this.items = page.data.map((c) => ({ ...c, decision: null, busy: false }));
    this.count = page.count;
    this.cursor = page.next_cursor;
    this.loaded = true;
    this.index = 0;
    this.preload();
    this.onChange();
  }

  /** The next page, once at a time; it continues after the last loaded candidate. */
  more() {
    if (!this.cursor) return Promise.resolve(false);
    if (!this.paging) {
      const cursor = this.cursor;
      this.paging = api.queue(this.projectId, { ...this.filters, cursor, limit: PAGE })
        .then((page) => {
          const known = new Set(this.items.map((c) => c.id));
          for (const c of page.data) {
            if (!known.has(c.id)) this.items.push({ ...c, decision: null, busy: false });
          }
          this.cursor = page.next_cursor;
          this.onChange();
          return true;
        })
        .finally(() => { this.paging = null; });
    }
    return this.paging;
  }

  get current() { return this.items[this.index] || null; }

  /** Pending under the filters: the server's count less the decisions made here. */
  get pending() {
    return this.count - this.items.filter((c) => c.decision !== null).length;
  }

  /** Decoded assets of a candidate if ready, else null (and they are being loaded). */
  ready(candidate) {
    const entry = candidate && this.load_(candidate);
    return entry && entry.value ? entry.value : null;
  }

  whenReady(candidate) { return this.load_(candidate).promise; }

  load_(candidate) {
    let entry = this.assets.get(candidate.id);
    if (!entry) {
      entry = { value: null, error: null };
      entry.promise = loadAssets(candidate, this.box).then(
        (value) => { entry.value = value; return value; },
        (error) => { entry.error = error; this.assets.delete(candidate.id); throw error; },
      );
      this.assets.set(candidate.id, entry);
    }
    return entry;
  }

  /** Decode around the current candidate and let go of the bitmaps far from it. */
  preload() {
    const keep = new Set();
    for (let i = this.index - BEHIND; i <= this.index + AHEAD; i++) {
      const candidate = this.items[i];
      if (!candidate) continue;
      keep.add(candidate.id);
      this.load_(candidate).promise.catch(() => {}); // reported when it is shown
    }
    for (const [id, entry] of this.assets) {
      if (keep.has(id)) continue;
      this.assets.delete(id);
      entry.promise.then(releaseAssets, () => {});
    }
    if (this.items.length - this.index <= AHEAD + 2) this.more().catch(() => {});
  }

  go(index) {
    this.index = Math.max(0, Math.min(index, this.items.length));
    this.preload();
    this.onChange();
  }

  /** Move to the first undecided candidate after the current one, loading pages as needed. */
  async advance() {
    for (;;) {
      const next = this.items.findIndex((c, i) => i > this.index && c.decision === null);
      if (next >= 0) return this.go(next);
      if (!this.cursor) return this.go(this.items.length);
      await this.more();
    }
  }

  /** Mark the current candidate decided and move on at once; `send` talks to the API.
   * If the API refuses, the decision is undone and the error goes to `onError`. */
  decide(candidate, decision, send, onError) {
    candidate.decision = decision;
    candidate.busy = true;
    this.remember(candidate);
    send().then(
      () => { candidate.busy = false; this.onChange(); },
      (error) => {
        candidate.decision = null;
        candidate.busy = false;
        onError(error);
        this.onChange();
      },
    );
    return this.advance();
  }

  /** Note `candidate` as the one decided last on this page (what U undoes). */
  remember(candidate) {
    this.decided = [...(this.decided || []).filter((c) => c !== candidate), candidate];
  }

  /** The candidate decided last on this page that is still decided, or null. */
  lastDecided() {
    const decided = (this.decided || []).filter((c) => c.decision !== null);
    return decided.length ? decided[decided.length - 1] : null;
  }

  /** Take `candidate`'s decision back and show it again; `send` talks to the API. If the API
   * refuses, the decision stands and the error goes to `onError`. */
  undo(candidate, send, onError) {
    const decision = candidate.decision;
    candidate.busy = true;
    this.onChange();
    return send().then(
      () => {
        candidate.decision = null;
        candidate.busy = false;
        this.decided = this.decided.filter((c) => c !== candidate);
        this.go(this.items.indexOf(candidate));
      },
      (error) => {
        candidate.decision = decision;
        candidate.busy = false;
        onError(error);
        this.onChange();
      },
    );
  }

  close() {
    for (const entry of this.assets.values()) entry.promise.then(releaseAssets, () => {});
    this.assets.clear();
  }
}
