// The signed-in user's own account: a new password, and API tokens for tools (a PACS bridge,
// a script) made, shown once, listed and revoked here.

import { useState } from "preact/hooks";
import { api, sessionEnded } from "../api.js";
import { Errors, html, Notice, useErrors, useLoad } from "../components.js";

function PasswordCard() {
  const [fields, setFields] = useState({ current: "", next: "", again: "" });
  const [busy, setBusy] = useState(false);
  const errors = useErrors();
  const set = (name) => (event) => setFields({ ...fields, [name]: event.target.value });
  const submit = async (event) => {
    event.preventDefault();
    errors.clear();
    if (fields.next !== fields.again) {
      errors.add("The new password and its repetition differ.");
      return;
    }
    setBusy(true);
    try {
      await api.changePassword(fields.current, fields.next);
      // The server ended every browser session of the account, this one included.
      sessionEnded("Your password was changed: log in with the new one.");
    } catch (exc) {
      errors.add(exc);
      setBusy(false);
    }
  };
  return html`<form class="card password" onSubmit=${submit}>
    <h2>Password</h2>
    <p class="note">Changing it ends every browser session of your account, this one too;
      API tokens keep working.</p>
    <div class="project-form">
      <label>Current password <input type="password" name="current-password"
        autocomplete="current-password" required value=${fields.current} onInput=${set("current")} /></label>
      <label>New password <input type="password" name="new-password" autocomplete="new-password"
        required value=${fields.next} onInput=${set("next")} /></label>
      <label>New password again <input type="password" name="new-password-again"
        autocomplete="new-password" required value=${fields.again} onInput=${set("again")} /></label>
    </div>
    <${Errors} errors=${errors.errors} onDismiss=${errors.dismiss} />
    <button class="primary" type="submit" disabled=${busy}>Change password</button>
  </form>`;
}

const when = (moment) => (moment ? new Date(moment).toLocaleString() : "–");

function tokenState(row) {
  if (row.revoked_at) return `revoked ${when(row.revoked_at)}`;
  if (row.expires_at && new Date(row.expires_at) < new Date()) return "expired";
  return "active";
}

function TokensCard() {
  const tokens = useLoad(() => api.tokens(), []);
  const [name, setName] = useState("");
  const [expires, setExpires] = useState("");
  const [made, setMade] = useState(null);
  const errors = useErrors();
  const create = async (event) => {
    event.preventDefault();
    errors.clear();
    try {
      // A date alone means the end of that day in UTC: the API wants a time zone.
      const at = expires ? `${expires}T23:59:59Z` : null;
      setMade(await api.createToken(name.trim(), at));
      setName("");
      setExpires("");
      tokens.reload();
    } catch (exc) {
      errors.add(exc);
    }
  };
  const revoke = async (row) => {
    try {
      await api.revokeToken(row.id);
      tokens.reload();
    } catch (exc) {
      errors.add(exc);
    }
  };
  const copy = () => navigator.clipboard.writeText(made.token).catch(errors.add);
  return html`<div class="card tokens">
    <h2>API tokens</h2>
    <p class="note">A tool calling the API sends <code>Authorization: Bearer TOKEN</code>. A
      token acts as you, with your roles, until it expires or is revoked.</p>
    ${made && html`<div class="notice new-token" role="status">
      <p>Token <b>${made.name}</b>, shown only now: copy it to where the tool keeps secrets.</p>
      <code class="token-value">${made.token}</code>
      <div class="row"><button onClick=${copy}>Copy</button>
        <button onClick=${() => setMade(null)}>Done</button></div>
    </div>`}
    <form class="row" onSubmit=${create}>
      <label>Name <input name="token-name" required maxlength="100" value=${name}
        placeholder="pacs-router" onInput=${(e) => setName(e.target.value)} /></label>
      <label>Expires <input type="date" name="token-expires" value=${expires}
        onInput=${(e) => setExpires(e.target.value)} /></label>
      <button type="submit">Create token</button>
    </form>
    <${Errors} errors=${[...(tokens.error ? [tokens.error] : []), ...errors.errors]}
      onDismiss=${errors.dismiss} />
    ${tokens.data && (tokens.data.length === 0 ? html`<p class="note">No API token yet.</p>`
      : html`<table class="list">
      <thead><tr><th>Name</th><th>Starts with</th><th>Made</th><th>Last used</th>
        <th>Expires</th><th>State</th><th></th></tr></thead>
      <tbody>${tokens.data.map((row) => html`<tr key=${row.id} data-token=${row.id}>
        <td>${row.name}</td>
        <td><code>${row.prefix}…</code></td><td>${when(row.created_at)}</td>
        <td>${when(row.last_used_at)}</td><td>${row.expires_at ? when(row.expires_at) : "never"}</td>
        <td class="state">${tokenState(row)}</td>
        <td>${!row.revoked_at && html`<button class="link" onClick=${() => revoke(row)}>
          revoke</button>`}</td>
      </tr>`)}</tbody>
    </table>`)}
  </div>`;
}

export function AccountScreen({ user }) {
  return html`<section class="account">
    <h1>Your account${user ? `: ${user.username}` : ""}</h1>
    ${user && user.is_superuser && html`<${Notice}
      text="You are a site administrator: you manage every project and account." />`}
    <${PasswordCard} />
    <${TokensCard} />
  </section>`;
}
