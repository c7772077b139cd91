// Login: a username and password for a session token.

import { useState } from "preact/hooks";
import { api, token } from "../api.js";
import { Errors, html } from "../components.js";

export function LoginScreen({ onLogin, reason }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const answer = await api.login(username, password);
      token.set(answer.access_token);
      onLogin(await api.me());
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };

  return html`<section class="login">
    <h1>Log in to SamDSK</h1>
    ${reason && html`<p class="notice">Your session ended: ${reason}</p>`}
    <form onSubmit=${submit}>
      <label>Username
        <input name="username" autocomplete="username" value=${username} required
          onInput=${(e) => setUsername(e.target.value)} />
      </label>
      <label>Password
        <input name="password" type="password" autocomplete="current-password" value=${password}
          required onInput=${(e) => setPassword(e.target.value)} />
      </label>
      <button class="primary" type="submit" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
    </form>
    <${Errors} errors=${error ? [error] : []} />
  </section>`;
}
