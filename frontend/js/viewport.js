// Zoom and pan as a plain transform: screen = image * scale + offset. Pure functions.

export const MIN_SCALE = 0.05;
export const MAX_SCALE = 32;

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

/** The whole image centred in a box of boxWidth x boxHeight screen pixels. */
export function fitView(width, height, boxWidth, boxHeight) {
  const scale = clamp(Math.min(boxWidth / width, boxHeight / height), MIN_SCALE, MAX_SCALE);
  return {
    scale,
    x: (boxWidth - width * scale) / 2,
    y: (boxHeight - height * scale) / 2,
  };
}

/** Zoom by `factor` keeping the image point under screen point (px, py) where it is. */
export function zoomAt(view, factor, px, py) {
  const scale = clamp(view.scale * factor, MIN_SCALE, MAX_SCALE);
  const applied = scale / view.scale;
  return { scale, x: px - (px - view.x) * applied, y: py - (py - view.y) * applied };
}

export function panBy(view, dx, dy) {
  return { ...view, x: view.x + dx, y: view.y + dy };
}

/** The image pixel coordinates (fractional) under screen point (px, py). */
export function toImage(view, px, py) {
  return { x: (px - view.x) / view.scale, y: (py - view.y) / view.scale };
}

export function cssTransform(view) {
  return `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
}
