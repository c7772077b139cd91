// Undo and redo of mask edits. Each step keeps only the rectangle that changed (before and
// after), so a long session on a 2048 x 2048 mask stays small in memory. Pure, no DOM.

const MAX_STEPS = 200;

function changedRegion(before, after, width, height) {
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      if (before[row + x] !== after[row + x]) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
    }
  }
  return x1 < 0 ? null : { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

function crop(classes, width, region) {
  const out = new Uint8Array(region.w * region.h);
  for (let y = 0; y < region.h; y++) {
    const start = (region.y + y) * width + region.x;
    out.set(classes.subarray(start, start + region.w), y * region.w);
  }
  return out;
}

function paste(classes, width, region, patch) {
  for (let y = 0; y < region.h; y++) {
    classes.set(patch.subarray(y * region.w, (y + 1) * region.w), (region.y + y) * width + region.x);
  }
}

export class EditHistory {
  constructor(width, height) {
    this.width = width;
    this.height = height;
    this.done = [];
    this.undone = [];
  }

  /** Record the step from `before` (a copy taken when the stroke began) to `classes` now.
   * Returns the changed region, or null when nothing changed (no step is recorded). */
  commit(before, classes) {
    const region = changedRegion(before, classes, this.width, this.height);
    if (!region) return null;
    this.done.push({
      region,
      before: crop(before, this.width, region),
      after: crop(classes, this.width, region),
    });
    if (this.done.length > MAX_STEPS) this.done.shift();
    this.undone = [];
    return region;
  }

  /** Put the mask back as it was before the last step; returns the region or null. */
  undo(classes) {
    const step = this.done.pop();
    if (!step) return null;
    paste(classes, this.width, step.region, step.before);
    this.undone.push(step);
    return step.region;
  }

  redo(classes) {
    const step = this.undone.pop();
    if (!step) return null;
    paste(classes, this.width, step.region, step.after);
    this.done.push(step);
    return step.region;
  }

  get canUndo() { return this.done.length > 0; }
  get canRedo() { return this.undone.length > 0; }
}
