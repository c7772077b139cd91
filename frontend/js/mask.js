// Masks as the page holds them: Uint8Array of class indices, row-major, width * height
// (0 = background), exactly what the API's mask PNGs contain. Pure functions, no DOM.

// Class colours chosen to stand out on endoscopy, dermoscopy and ultrasound images.
export const PALETTE = [
  [0, 230, 118], [41, 121, 255], [255, 196, 0], [213, 0, 249], [255, 61, 0], [0, 229, 255],
];

export function classColor(value) {
  return PALETTE[(value - 1) % PALETTE.length];
}

export function fullRegion(width, height) {
  return { x: 0, y: 0, w: width, h: height };
}

/** The region grown by `margin` on every side, clipped to the image. */
export function expandRegion(region, margin, width, height) {
  const x = Math.max(0, region.x - margin);
  const y = Math.max(0, region.y - margin);
  const right = Math.min(width, region.x + region.w + margin);
  const bottom = Math.min(height, region.y + region.h + margin);
  return { x, y, w: Math.max(0, right - x), h: Math.max(0, bottom - y) };
}

export function unionRegion(a, b) {
  if (!a) return b;
  if (!b) return a;
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return {
    x, y,
    w: Math.max(a.x + a.w, b.x + b.w) - x,
    h: Math.max(a.y + a.h, b.y + b.h) - y,
  };
}

/** Class indices from the RGBA of a decoded mask PNG: the API's masks are grey, so the red
 * channel is the value. */
export function classesFromRGBA(rgba, width, height) {
  const classes = new Uint8Array(width * height);
  for (let i = 0; i < classes.length; i++) classes[i] = rgba[i * 4];
  return classes;
}

/** RGBA with red = green = blue = class index and full alpha: a mask the API accepts. */
export function rgbaFromClasses(classes) {
  const rgba = new Uint8ClampedArray(classes.length * 4);
  for (let i = 0; i < classes.length; i++) {
    const v = classes[i];
    rgba[i * 4] = v; rgba[i * 4 + 1] = v; rgba[i * 4 + 2] = v; rgba[i * 4 + 3] = 255;
  }
  return rgba;
}

/** RGBA of the overlay's fill over `region`: the class colour where the mask is set,
 * transparent elsewhere. Opacity is applied when drawing, so the slider costs nothing. */
export function fillPixels(classes, width, region) {
  const out = new Uint8ClampedArray(region.w * region.h * 4);
  for (let y = 0; y < region.h; y++) {
    const row = (region.y + y) * width + region.x;
    for (let x = 0; x < region.w; x++) {
      const v = classes[row + x];
      if (v === 0) continue;
      const [r, g, b] = classColor(v);
      const o = (y * region.w + x) * 4;
      out[o] = r; out[o + 1] = g; out[o + 2] = b; out[o + 3] = 255;
    }
  }
  return out;
}

function isBoundary(classes, width, height, x, y) {
  const v = classes[y * width + x];
  if (v === 0) return false;
  if (x === 0 || y === 0 || x === width - 1 || y === height - 1) return true;
  const i = y * width + x;
  return classes[i - 1] !== v || classes[i + 1] !== v ||
    classes[i - width] !== v || classes[i + width] !== v;
}

/** RGBA of the contour over `region`: every mask pixel with a 4-neighbour of another value,
 * drawn as a `thickness`-pixel square so it stays visible when a large image is shown small. */
export function contourPixels(classes, width, height, thickness, region) {
  const out = new Uint8ClampedArray(region.w * region.h * 4);
  const reach = expandRegion(region, thickness, width, height);
  const before = Math.floor((thickness - 1) / 2);
  for (let y = reach.y; y < reach.y + reach.h; y++) {
    for (let x = reach.x; x < reach.x + reach.w; x++) {
      if (!isBoundary(classes, width, height, x, y)) continue;
      const [r, g, b] = classColor(classes[y * width + x]);
      for (let sy = y - before; sy < y - before + thickness; sy++) {
        if (sy < region.y || sy >= region.y + region.h) continue;
        for (let sx = x - before; sx < x - before + thickness; sx++) {
          if (sx < region.x || sx >= region.x + region.w) continue;
          const o = ((sy - region.y) * region.w + (sx - region.x)) * 4;
          out[o] = r; out[o + 1] = g; out[o + 2] = b; out[o + 3] = 255;
        }
      }
    }
  }
  return out;
}

/** Contour thickness for an image: about one screen pixel when the image fits a window. */
export function contourThickness(width, height) {
  return Math.max(1, Math.round(Math.max(width, height) / 700));
}

/** Paint a disc of diameter `size` along the segment from `from` to `to` (image pixels),
 * setting `value` (0 erases). Returns the region that changed, or null. */
export function paintStroke(classes, width, height, from, to, size, value) {
  const radius = Math.max(0.5, size / 2);
  const length = Math.hypot(to.x - from.x, to.y - from.y);
  // Stamps half a radius apart leave no gaps between pointer events, however fast the hand.
  const steps = Math.max(1, Math.ceil(length / Math.max(radius / 2, 0.5)));
  let changed = null;
  for (let s = 0; s <= steps; s++) {
    const t = s / steps;
    const region = paintDisc(
      classes, width, height, from.x + (to.x - from.x) * t, from.y + (to.y - from.y) * t,
      radius, value,
    );
    changed = unionRegion(changed, region);
  }
  return changed;
}

function paintDisc(classes, width, height, cx, cy, radius, value) {
  const top = Math.max(0, Math.floor(cy - radius));
  const bottom = Math.min(height - 1, Math.ceil(cy + radius));
  let changed = null;
  for (let y = top; y <= bottom; y++) {
    const dy = y + 0.5 - cy;
    if (Math.abs(dy) > radius) continue;
    const half = Math.sqrt(radius * radius - dy * dy);
    const left = Math.max(0, Math.ceil(cx - half - 0.5));
    const right = Math.min(width - 1, Math.floor(cx + half - 0.5));
    if (right < left) continue;
    const row = y * width;
    for (let x = left; x <= right; x++) classes[row + x] = value;
    changed = unionRegion(changed, { x: left, y, w: right - left + 1, h: 1 });
  }
  return changed;
}

/** Set every background pixel that the image border cannot reach through background
 * (4-connected) to `value`. Returns how many pixels were filled. */
export function fillHoles(classes, width, height, value) {
  const reached = new Uint8Array(classes.length);
  const stack = new Int32Array(classes.length);
  let top = 0;
  const push = (i) => {
    if (classes[i] === 0 && !reached[i]) { reached[i] = 1; stack[top++] = i; }
  };
  for (let x = 0; x < width; x++) { push(x); push((height - 1) * width + x); }
  for (let y = 0; y < height; y++) { push(y * width); push(y * width + width - 1); }
  while (top > 0) {
    const i = stack[--top];
    const x = i % width;
    if (x > 0) push(i - 1);
    if (x < width - 1) push(i + 1);
    if (i >= width) push(i - width);
    if (i < classes.length - width) push(i + width);
  }
  let filled = 0;
  for (let i = 0; i < classes.length; i++) {
    if (classes[i] === 0 && !reached[i]) { classes[i] = value; filled++; }
  }
  return filled;
}

export function countForeground(classes) {
  let n = 0;
  for (let i = 0; i < classes.length; i++) n += classes[i] !== 0;
  return n;
}
