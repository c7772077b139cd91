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

const KNOWLEDGE_FIELDS = [
  ["minRegions", "min_regions", false, "the fewest regions"],
  ["maxRegions", "max_regions", false, "the most regions"],
  ["minArea", "min_area", true, "the smallest area"],
  ["maxArea", "max_area", true, "the largest area"],
];

/** A stored fraction as the percent the form shows: 0.6 as 60, not 60.00000000000001. */
export function asPercent(fraction) {
  return String(Number((fraction * 100).toPrecision(6)));
}

/** The settings form's fields for `project`, every value a string as an input holds it. */
export function settingsFields(project) {
  const classes = {};
  for (const name of project.class_names) {
    const k = project.knowledge[name];
    classes[name] = {
      minRegions: String(k.min_regions), maxRegions: String(k.max_regions),
      minArea: asPercent(k.min_area), maxArea: asPercent(k.max_area),
    };
  }
  const auto = project.auto_accept_threshold;
  return { description: project.description, autoAccept: auto === null ? "" : String(auto), classes };
}

/** The PATCH /projects/{id} body of the settings form: only what differs from `project`
 * (empty: nothing to save). Every knowledge field must be filled in, as a class's knowledge
 * is replaced whole; the auto-accept score left empty turns auto-accept off. Throws an Error
 * naming the field the form can tell is wrong; the server checks ranges and order. */
export function projectChanges(project, fields) {
  const body = {};
  const description = fields.description.trim();
  if (description !== project.description) body.description = description;
  const autoText = fields.autoAccept.trim();
  const threshold = autoText === "" ? null : Number(autoText);
  if (threshold !== null && !Number.isFinite(threshold)) {
    throw new Error(`the auto-accept score must be a number from 0 to 1; got "${autoText}"`);
  }
  if (threshold !== project.auto_accept_threshold) body.auto_accept_threshold = threshold;
  const knowledge = {};
  for (const [name, entry] of Object.entries(fields.classes)) {
    const parsed = {};
    for (const [field, key, percent, label] of KNOWLEDGE_FIELDS) {
      const text = String(entry[field]).trim();
      const value = Number(text);
      if (!text || !Number.isFinite(value)) {
        throw new Error(`${name}: ${label} must be a number; got "${text}"`);
      }
      parsed[key] = percent ? value / 100 : value;
    }
    const stored = project.knowledge[name];
    // percent and back may differ in the last bits: compare as the form shows them
    const same = KNOWLEDGE_FIELDS.every(([, key, percent]) => (percent
      ? asPercent(parsed[key]) === asPercent(stored[key]) : parsed[key] === stored[key]));
    if (!same) knowledge[name] = parsed;
  }
  if (Object.keys(knowledge).length) body.knowledge = knowledge;
  return body;
}

/** One line of a class's image-level knowledge: "polyp: 1 to 3 regions, each 0.5 to 60% of
 * the image". */
export function knowledgeSummary(name, k) {
  const regions = k.min_regions === k.max_regions
    ? `${k.min_regions} region${k.min_regions === 1 ? "" : "s"}`
    : `${k.min_regions} to ${k.max_regions} regions`;
  const areas = `${asPercent(k.min_area)} to ${asPercent(k.max_area)}%`;
  return `${name}: ${regions}, each ${areas} of the image`;
}
