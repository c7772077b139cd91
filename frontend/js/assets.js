// Everything the viewer draws for one candidate, decoded ahead of time: the image, the mask's
// class indices, and the fill and contour layers as bitmaps. Once these exist, showing the
// candidate is three drawImage calls, which is what makes stepping to the next one instant.

import { api } from "./api.js";
import {
  classesFromRGBA, contourPixels, contourThickness, fillPixels, fullRegion,
} from "./mask.js";

// Mask PNGs hold class indices: any colour management or premultiplication would change them.
const RAW = { colorSpaceConversion: "none", premultiplyAlpha: "none" };

/** The image as a bitmap. Browsers decode PNG, JPEG and BMP themselves; for TIFF and DICOM
 * the API renders a windowed PNG (/display), asked for only when the browser fails. */
async function decodeImage(candidate) {
  const original = await api.blob(candidate.image_url);
  try {
    return await createImageBitmap(original);
  } catch {
    return createImageBitmap(await api.blob(candidate.image_url.replace(/\/file$/, "/display")));
  }
}

async function decodeClasses(blob) {
  const bitmap = await createImageBitmap(blob, RAW);
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  return { classes: classesFromRGBA(rgba, width, height), width, height };
}

/** Bitmaps of the fill and contour of `classes`. */
export async function maskLayers(classes, width, height) {
  const region = fullRegion(width, height);
  const thickness = contourThickness(width, height);
  const fill = new ImageData(fillPixels(classes, width, region), width, height);
  const contour = new ImageData(contourPixels(classes, width, height, thickness, region), width, height);
  const [fillBitmap, contourBitmap] = await Promise.all([
    createImageBitmap(fill), createImageBitmap(contour),
  ]);
  return { fill: fillBitmap, contour: contourBitmap };
}

/** Fetch and decode one candidate: {id, image, classes, width, height, fill, contour}. */
export async function loadAssets(candidate) {
  const [bitmap, mask] = await Promise.all([
    decodeImage(candidate), api.blob(candidate.mask_url).then(decodeClasses),
  ]);
  if (bitmap.width !== mask.width || bitmap.height !== mask.height) {
    throw new Error(
      `candidate ${candidate.id}: the mask is ${mask.width}x${mask.height} but the image is ` +
      `${bitmap.width}x${bitmap.height}`);
  }
  const layers = await maskLayers(mask.classes, mask.width, mask.height);
  return { id: candidate.id, image: bitmap, ...mask, ...layers };
}

export function releaseAssets(assets) {
  if (!assets) return;
  for (const bitmap of [assets.image, assets.fill, assets.contour]) if (bitmap) bitmap.close();
}
