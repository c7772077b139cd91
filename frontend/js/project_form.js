// What the new-project form sends. Pure functions.

/** The POST /projects body of the form's fields (strings as typed). Region counts and areas
 * (in percent of the image) apply to every class; left empty, the server's defaults hold.
 * Throws an Error naming the field for what the form itself can tell is missing; the server
 * checks the rest (ranges, order, a name in use) and its 422 or 409 is shown as it is. */
export function projectBody(fields) {
  const name = fields.name.trim();
  if (!name) throw new Error("give the project a name");
  const classNames = fields.classes.split(",").map((c) => c.trim()).filter(Boolean);
  if (!classNames.length) throw new Error("name at least one class, e.g. polyp");
  const entry = {};
  const number = (field, key, percent, label) => {
    const text = (fields[field] || "").trim();
    if (!text) return;
    const value = Number(text);
    if (!Number.isFinite(value)) throw new Error(`${label} must be a number; got "${text}"`);
    entry[key] = percent ? value / 100 : value;
  };
  number("minRegions", "min_regions", false, "the fewest regions");
  number("maxRegions", "max_regions", false, "the most regions");
  number("minArea", "min_area", true, "the smallest area");
  number("maxArea", "max_area", true, "the largest area");
  const knowledge = {};
  if (Object.keys(entry).length) for (const c of classNames) knowledge[c] = { ...entry };
  return { name, description: fields.description.trim(), class_names: classNames, knowledge };
}
