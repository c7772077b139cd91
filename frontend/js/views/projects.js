// The projects the user is a member of.

import { api } from "../api.js";
import { Errors, html, useLoad } from "../components.js";
import { href } from "../router.js";

export function ProjectsScreen() {
  const { data, error, loading } = useLoad(() => api.projects(), []);
  return html`<section class="projects-page" data-loaded=${Boolean(data)}>
    <h1>Projects</h1>
    <${Errors} errors=${error ? [error] : []} />
    ${loading && !data && html`<p class="note">Loading…</p>`}
    ${data && data.count === 0 && html`<p class="note">${"You are not a member of any project " +
      "yet; an administrator adds you, or create one through the API (POST /api/v1/projects)."}</p>`}
    ${data && data.count > 0 && html`<table class="list projects">
      <thead><tr><th>Project</th><th>Classes</th><th>Description</th></tr></thead>
      <tbody>${data.data.map((p) => html`<tr key=${p.id}>
        <td><a href=${href("project", p.id)}>${p.name}</a></td>
        <td>${p.class_names.join(", ")}</td>
        <td>${p.description}</td>
      </tr>`)}</tbody>
    </table>`}
  </section>`;
}
