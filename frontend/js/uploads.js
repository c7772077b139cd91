// Uploading many files one request each: one bad file is reported by name and the rest still
// go in (the batch endpoint is all or nothing). Masks find their image by file name.

import { api } from "./api.js";
import { stem } from "./format.js";

/** Pair mask files with images whose original file name has the same stem. */
export function matchMasks(files, images) {
  const byStem = new Map();
  for (const image of images) {
    const key = stem(image.original_filename);
    if (byStem.has(key)) byStem.set(key, null); // ambiguous: two images share the stem
    else byStem.set(key, image);
  }
  const pairs = [];
  const unmatched = [];
  for (const file of files) {
    const image = byStem.get(stem(file.name));
    if (image) pairs.push({ file, image });
    else unmatched.push({ file, why: byStem.has(stem(file.name)) ? "several images have this name" : "no image has this name" });
  }
  return { pairs, unmatched };
}

/** Overall fraction done: whole files finished plus the current one's bytes sent. */
export function overallProgress(sizes, finished, currentLoaded) {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total === 0) return finished >= sizes.length ? 1 : 0;
  const done = sizes.slice(0, finished).reduce((a, b) => a + b, 0);
  return Math.min(1, (done + currentLoaded) / total);
}

/** Every image of a project (the listing is paged). */
export async function allImages(projectId) {
  const images = [];
  for (let offset = 0; ; offset += 500) {
    const page = await api.images(projectId, offset, 500);
    images.push(...page.data);
    if (images.length >= page.count || page.data.length === 0) return images;
  }
}

/** Send `jobs` [{name, size, send(onProgress)}] one after another; `report` gets
 * {progress, results} after each step. Resolves to the results [{name, ok, text}]. */
export async function sendAll(jobs, describeOk, report) {
  const sizes = jobs.map((j) => j.size);
  const results = [];
  for (let i = 0; i < jobs.length; i++) {
    const job = jobs[i];
    try {
      const answer = await job.send((loaded) => report({
        progress: overallProgress(sizes, i, loaded), results,
      }));
      results.push({ name: job.name, ok: true, text: describeOk(answer) });
    } catch (exc) {
      results.push({ name: job.name, ok: false, text: exc.message });
    }
    report({ progress: overallProgress(sizes, i + 1, 0), results: [...results] });
  }
  return results;
}
