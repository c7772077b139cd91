// A module worker that turns a candidate's image and mask files into what the viewer draws.
// Decoding a 2048 px image and tracing its mask's contour takes tens of milliseconds; done
// here, it never delays a key press on the page.

import {
  classesFromRGBA, contourPixels, contourThickness, fillPixels, fullRegion,
} from "./mask.js";

// Mask PNGs hold class indices: any colour management or premultiplication would change them.
const RAW = { colorSpaceConversion: "none", premultiplyAlpha: "none" };

async function decodeClasses(blob) {
  const bitmap = await createImageBitmap(blob, RAW);
  const { width, height } = bitmap;
  const context = new OffscreenCanvas(width, height).getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = context.getImageData(0, 0, width, height).data;
  return { classes: classesFromRGBA(rgba, width, height), width, height };
}

/** A copy that just fits a `box` {width, height} of device pixels; null when the bitmap
 * already fits. */
function shrink(bitmap, box, quality) {
  const factor = Math.min(box.width / bitmap.width, box.height / bitmap.height);
  if (!(factor < 1)) return null;
  return createImageBitmap(bitmap, {
    resizeWidth: Math.max(1, Math.round(bitmap.width * factor)),
    resizeHeight: Math.max(1, Math.round(bitmap.height * factor)),
    resizeQuality: quality,
  });
}

async function decode({ image, mask, box }) {
  let picture;
  try {
    picture = await createImageBitmap(image);
  } catch {
    return { undecodable: true }; // TIFF, DICOM: the page asks the API for a PNG instead
  }
  const { classes, width, height } = await decodeClasses(mask);
  if (picture.width !== width || picture.height !== height) {
    throw new Error(`the mask is ${width}x${height} but the image is ` +
      `${picture.width}x${picture.height}`);
  }
  const region = fullRegion(width, height);
  const [fill, contour] = await Promise.all([
    createImageBitmap(new ImageData(fillPixels(classes, width, region), width, height)),
    createImageBitmap(new ImageData(
      contourPixels(classes, width, height, contourThickness(width, height), region), width, height)),
  ]);
  // Copies at the size the viewer shows a whole image: drawing them costs a fraction of
  // drawing the originals, and the screen needs no further scaling to show them.
  const [previewImage, previewFill, previewContour] = await Promise.all([
    shrink(picture, box, "medium"), shrink(fill, box, "medium"), shrink(contour, box, "medium"),
  ]);
  const preview = previewImage && { image: previewImage, fill: previewFill, contour: previewContour };
  return { image: picture, fill, contour, classes, width, height, preview };
}

self.onmessage = async ({ data }) => {
  try {
    const result = await decode(data);
    const transfer = result.undecodable ? [] : [
      result.image, result.fill, result.contour, result.classes.buffer,
      ...(result.preview ? Object.values(result.preview) : []),
    ];
    self.postMessage({ id: data.id, result }, transfer);
  } catch (exc) {
    self.postMessage({ id: data.id, error: exc.message || String(exc) });
  }
};
