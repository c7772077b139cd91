// Everything the viewer draws for one candidate, decoded ahead of time: the image, the mask's
// class indices, and the fill and contour layers as bitmaps (plus small copies of the three
// for a first look). Once these exist, showing the candidate is three drawImage calls, which
// is what makes stepping to the next one instant. The decoding runs in a worker.

import { api } from "./api.js";

let worker = null;
let sequence = 0;
const waiting = new Map(); // message id -> {resolve, reject}

function decoder() {
  if (!worker) {
    worker = new Worker(new URL("./decoder.js", import.meta.url), { type: "module" });
    worker.onmessage = ({ data }) => {
      const promise = waiting.get(data.id);
      waiting.delete(data.id);
      if (data.error) promise.reject(new Error(data.error));
      else promise.resolve(data.result);
    };
    worker.onerror = (event) => {
      for (const promise of waiting.values()) {
        promise.reject(new Error(`the image decoder failed: ${event.message}`));
      }
      waiting.clear();
      worker = null;
    };
  }
  return worker;
}

function decode(image, mask, box) {
  const id = ++sequence;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject });
    decoder().postMessage({ id, image, mask, box });
  });
}

/** An all-background mask of `width` x `height`, as the PNG the decoder reads. */
export function emptyMask(width, height) {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d");
  context.fillStyle = "#000";
  context.fillRect(0, 0, width, height);
  return canvas.convertToBlob({ type: "image/png" });
}

/** Fetch and decode one candidate: {id, image, fill, contour, classes, width, height,
 * preview: {image, fill, contour} | null}. `box` is the viewer's size in device pixels: the
 * preview is the image fitted into it (null for images that fit already). Without a
 * `mask_url` the mask is empty (an image with no label yet, of `width` x `height`). */
export async function loadAssets(candidate, box) {
  const [image, mask] = await Promise.all([
    api.blob(candidate.image_url),
    candidate.mask_url ? api.blob(candidate.mask_url)
      : emptyMask(candidate.width, candidate.height),
  ]);
  let result = await decode(image, mask, box);
  if (result.undecodable) {
    // Browsers decode PNG, JPEG and BMP; for TIFF and DICOM the API renders a PNG.
    const png = await api.blob(candidate.image_url.replace(/\/file$/, "/display"));
    result = await decode(png, mask, box);
    if (result.undecodable) throw new Error(`image ${candidate.image_id} cannot be shown`);
  }
  return { id: candidate.id, ...result };
}

export function releaseAssets(assets) {
  if (!assets) return;
  const bitmaps = [assets.image, assets.fill, assets.contour];
  if (assets.preview) bitmaps.push(...Object.values(assets.preview));
  for (const bitmap of bitmaps) if (bitmap) bitmap.close();
}
