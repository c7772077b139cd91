// The page: a header, the screen the location hash names, and a safety net that puts any
// error no view caught on the page instead of only in the console.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, token } from "./api.js";
import { Errors, html, useErrors } from "./components.js";
import { askBeforeLinksLeave, guardLeaving, href, mayLeave, parseHash } from "./router.js";
import { AccountScreen } from "./views/account.js";
import { DashboardScreen } from "./views/dashboard.js";
import { ImageScreen } from "./views/image.js";
import { ImagesScreen } from "./views/images.js";
import { LoginScreen } from "./views/login.js";
import { ProjectScreen } from "./views/project.js";
import { ProjectsScreen } from "./views/projects.js";
import { ReviewScreen } from "./views/review.js";

const SCREENS = {
  account: AccountScreen,
  projects: ProjectsScreen,
  project: ProjectScreen,
  review: ReviewScreen,
  dashboard: DashboardScreen,
  images: ImagesScreen,
  image: ImageScreen,
};
const TABS = [["project", "Overview"], ["review", "Review"], ["images", "Images"],
  ["dashboard", "Dashboard"]];

function useRoute() {
  const [route, setRoute] = useState(parseHash(location.hash));
  useEffect(() => {
    let shown = location.hash || "#/";
    const update = () => {
      if (!mayLeave(shown)) return; // unsaved work stays, and so does the address
      shown = location.hash || "#/";
      setRoute(parseHash(location.hash));
    };
    window.addEventListener("hashchange", update);
    const stopAsking = askBeforeLinksLeave();
    return () => { window.removeEventListener("hashchange", update); stopAsking(); };
  }, []);
  return route;
}

function Header({ route, user, onLogout }) {
  return html`<header class="top">
    <a class="brand" href=${href("projects")}>SamDSK</a>
    ${route.projectId && html`<nav class="tabs">
      ${TABS.map(([view, label]) => html`<a key=${view} href=${href(view, route.projectId)}
        class=${route.view === view ? "active" : ""}>${label}</a>`)}
    </nav>`}
    <span class="spacer"></span>
    ${user && html`<a class="user" href=${href("account")} title="Your password and API tokens">${user.username}</a>
      <button class="link" onClick=${onLogout}>Log out</button>`}
  </header>`;
}

function App() {
  const route = useRoute();
  const [user, setUser] = useState(null);
  const [ended, setEnded] = useState("");
  const stray = useErrors();

  useEffect(() => {
    const onEnded = (event) => {
      guardLeaving(null); // the session is over: unsaved strokes could not be saved anyway
      setUser(null);
      setEnded(event.detail);
      location.hash = "#/login";
    };
    const onStray = (event) => stray.add(event.reason || event.error || event.message);
    window.addEventListener("samdsk:logged-out", onEnded);
    window.addEventListener("unhandledrejection", onStray);
    window.addEventListener("error", onStray);
    return () => {
      window.removeEventListener("samdsk:logged-out", onEnded);
      window.removeEventListener("unhandledrejection", onStray);
      window.removeEventListener("error", onStray);
    };
  }, []);

  useEffect(() => {
    if (!token.get()) { if (route.view !== "login") location.hash = "#/login"; return; }
    if (!user) api.me().then(setUser, stray.add);
  }, [route.view, user]);

  const onLogin = (me) => { setUser(me); setEnded(""); location.hash = "#/"; };
  const onLogout = () => {
    api.logout().catch(stray.add).finally(() => {
      token.clear(); setUser(null); location.hash = "#/login";
    });
  };

  let screen;
  if (route.view === "login" || !token.get()) {
    screen = html`<${LoginScreen} onLogin=${onLogin} reason=${ended} />`;
  } else if (SCREENS[route.view]) {
    const Screen = SCREENS[route.view];
    screen = html`<${Screen} key=${`${route.view}-${route.projectId}-${route.imageId}`}
      projectId=${route.projectId} imageId=${route.imageId} user=${user} />`;
  } else {
    screen = html`<p class="error">There is no page at ${route.hash}.
      <a href=${href("projects")}>Projects</a></p>`;
  }
  return html`<${Header} route=${route} user=${user} onLogout=${onLogout} />
    <main>
      <${Errors} errors=${stray.errors} onDismiss=${stray.dismiss} />
      ${screen}
    </main>`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading…" line that shows until the modules have loaded
render(html`<${App} />`, root);
