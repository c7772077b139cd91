// The projects the user is a member of, and a new one.

import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Errors, html, useLoad } from "../components.js";
import { projectBody } from "../project_form.js";
import { href } from "../router.js";

const EMPTY = {
  name: "", classes: "", description: "", minRegions: "", maxRegions: "", minArea: "", maxArea: "",
};

function NewProject() {
  const [fields, setFields] = useState(EMPTY);
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const field = (key, label, props = {}) => html`<label>${label}
    <input name=${`project-${key}`} value=${fields[key]} ...${props}
      onInput=${(e) => setFields({ ...fields, [key]: e.target.value })} /></label>`;
  const create = async (event) => {
    event.preventDefault();
    setProblem(null);
    let body;
    try {
      body = projectBody(fields);
    } catch (exc) {
      setProblem(exc.message);
      return;
    }
    setBusy(true);
    try {
      const made = await api.createProject(body);
      location.hash = href("project", made.id);
    } catch (exc) {
      setProblem(exc);
    } finally {
      setBusy(false);
    }
  };
  return html`<details class="card new-project">
    <summary>New project</summary>
    <form class="project-form" onSubmit=${create}>
      ${field("name", "Name")}
      ${field("classes", "Classes (comma-separated)", { placeholder: "polyp" })}
      ${field("description", "Description")}
      <fieldset><legend>Image-level knowledge, for every class (empty: no limit)</legend>
        ${field("minRegions", "Regions from", { inputmode: "numeric", placeholder: "1" })}
        ${field("maxRegions", "to", { inputmode: "numeric", placeholder: "1" })}
        ${field("minArea", "Each region's area from (% of the image)", { inputmode: "decimal", placeholder: "0" })}
        ${field("maxArea", "to", { inputmode: "decimal", placeholder: "100" })}
      </fieldset>
      <${Errors} errors=${problem ? [problem] : []} />
      <button class="primary" type="submit" disabled=${busy}>Create project</button>
    </form>
  </details>`;
}

export function ProjectsScreen() {
  const { data, error, loading } = useLoad(() => api.projects(), []);
  return html`<section class="projects-page" data-loaded=${Boolean(data)}>
    <h1>Projects</h1>
    <${Errors} errors=${error ? [error] : []} />
    ${loading && !data && html`<p class="note">Loading…</p>`}
    ${data && data.count === 0 && html`<p class="note">${"You are not a member of any project " +
      "yet: create one below, or an administrator of one adds you."}</p>`}
    ${data && data.count > 0 && html`<table class="list projects">
      <thead><tr><th>Project</th><th>Classes</th><th>Description</th></tr></thead>
      <tbody>${data.data.map((p) => html`<tr key=${p.id}>
        <td><a href=${href("project", p.id)}>${p.name}</a></td>
        <td>${p.class_names.join(", ")}</td>
        <td>${p.description}</td>
      </tr>`)}</tbody>
    </table>`}
    <${NewProject} />
  </section>`;
}
