// A project's overview: the labeled set, the current round with live progress, and for
// admins the buttons that start and cancel rounds.

import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { Errors, html, Notice, ProgressBar, useErrors, useLoad } from "../components.js";
import { duration, percent } from "../format.js";
import { href } from "../router.js";
import { knowledgeSummary } from "../project_form.js";
import { peerMapsByDefault, roundSettings } from "../round_settings.js";
import { ModelsCard } from "./models.js";
import { ExportCard, MembersCard } from "./project_admin.js";
import { SettingsCard } from "./project_settings.js";

const ACTIVE = new Set(["queued", "running"]);
const POLL_MS = 1000;

function useOverview(projectId) {
  return useLoad(async () => {
    const [project, status, rounds] = await Promise.all([
      api.project(projectId), api.status(projectId), api.rounds(projectId),
    ]);
    return { project, status, rounds };
  }, [projectId]);
}

function RoundCard({ round, admin, onCancel }) {
  const active = ACTIVE.has(round.status);
  return html`<div class="card round" data-round=${round.number} data-status=${round.status}>
    <h2>Round ${round.number}: <span class="round-status">${round.status}</span></h2>
    ${round.status === "queued" ? html`<p>Waiting for a worker…</p>`
      : html`<p>Stage <b class="round-stage">${round.stage}</b>,${" "}
        <b class="round-percent">${percent(round.progress)}</b> done${active && html`, ${
          round.eta_seconds === null ? "estimating the time left"
            : html`about <b class="round-eta">${duration(round.eta_seconds)}</b> left`}`}.</p>`}
    <${ProgressBar} fraction=${round.progress} label="round progress" />
    ${round.settings.effective && html`<${RoundSources} effective=${round.settings.effective} />`}
    ${round.error && html`<p class="error">The round failed: ${round.error}</p>`}
    ${round.cancel_requested && active && html`<p class="note">Cancelling at the next check…</p>`}
    ${round.status === "succeeded" && html`<p>${round.counts.candidates ?? 0} candidates,${" "}
      ${round.counts.above_threshold ?? 0} above the threshold.${round.added_nothing && (
        (round.counts.candidates ?? 0) === 0 && (round.counts.skipped_rejected ?? 0) === 0
          ? " Every image was labelled when it started: it trained a model and had nothing to propose."
          : " Nothing new reached the threshold: the project has converged.")}</p>`}
    ${admin && active && !round.cancel_requested && html`<button class="danger"
      onClick=${onCancel}>Cancel round ${round.number}</button>`}
  </div>`;
}

// What the round runs with, as its worker fixed it at the start: which proposal source and
// weights, and where the segmentation model's encoder weights came from.
function RoundSources({ effective }) {
  const encoder = effective.model && effective.model.encoder_weights_path;
  return html`<p class="round-sources note">Proposals: <b>${effective.proposal_source}</b>.
    Segmentation model: ${encoder ? `encoder weights from ${encoder}` : "random initialisation"}.</p>`;
}

// Which proposals a round will make, before it is started: the project's chosen source, or
// the server's default, with the server's SAM weights; offline proposals in place of SAM are
// said plainly, since they change what the round can find.
function ServerSources({ proposalSettings }) {
  const health = useLoad(() => api.health(), []);
  if (!health.data) return null;
  const { proposal_source: serverSource, proposal_weights: weights } = health.data;
  const chosen = proposalSettings && proposalSettings.source;
  const source = chosen || serverSource;
  if (source !== "offline") {
    return html`<p class="server-sources note">Region proposals: <b>SAM</b>, ${weights}${
      chosen ? " (chosen in this project's settings)" : ""}.</p>`;
  }
  // Said plainly: offline proposals change what a round can find.
  const why = chosen ? "chosen in this project's settings"
    : "this server has no SAM checkpoint configured (SAMDSK_SAM_CHECKPOINT)";
  return html`<p class="server-sources warning">Region proposals: <b>offline</b> classical
    image segmentation, not SAM: ${why}.</p>`;
}

function StartRound({ onStart, busy, modelSettings, proposalSettings }) {
  const [text, setText] = useState("");
  const [peerMaps, setPeerMaps] = useState(() => peerMapsByDefault(modelSettings));
  const [problem, setProblem] = useState("");
  const start = () => {
    let settings = {};
    try {
      settings = roundSettings(text, peerMaps);
    } catch (exc) {
      setProblem(`The settings are not a valid JSON object: ${exc.message}`);
      return;
    }
    setProblem("");
    onStart(settings);
  };
  return html`<div class="card">
    <button class="primary" disabled=${busy} onClick=${start}>Start round</button>
    <${ServerSources} proposalSettings=${proposalSettings} />
    <label class="option" title="Trains the model under both perturbation policies (twice the training time) and matches every image against the mean of the two models' maps: a region one model is sure of and the other rejects no longer scores near 1. Ticked to begin with where the project trains under the perturbation 'auto', the default.">
      <input type="checkbox" name="peer-maps" checked=${peerMaps}
        onChange=${(e) => setPeerMaps(e.target.checked)} />
      Peer maps: match against both perturbation models
      <span class="note"> (needs validation images: with fewer than 5 human labels there are
        none, only one model trains, and the round matches against its maps)</span>
    </label>
    <details><summary>Round settings (optional JSON, on top of the project's)</summary>
      <textarea name="round-settings" rows="3" placeholder='{"model": {"steps": 300}, "threshold": 0.9}'
        value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
    </details>
    ${problem && html`<p class="error">${problem}</p>`}
  </div>`;
}

export function ProjectScreen({ projectId }) {
  const overview = useOverview(projectId);
  const errors = useErrors();
  const [notice, setNotice] = useState("");
  const [busy, setBusy] = useState(false);
  const data = overview.data;
  const admin = Boolean(data && data.project.my_role === "admin");
  const latest = data && data.rounds.length ? data.rounds[data.rounds.length - 1] : null;
  const running = latest && ACTIVE.has(latest.status);

  // Poll while a round runs: progress, stage and ETA change every second or so.
  useEffect(() => {
    if (!running) return undefined;
    const timer = setTimeout(() => overview.reload(), POLL_MS);
    return () => clearTimeout(timer);
  }, [data, running]);

  const act = async (work, done) => {
    setBusy(true);
    try {
      await work();
      setNotice(done);
      await overview.reload();
    } catch (exc) {
      errors.add(exc);
    } finally {
      setBusy(false);
    }
  };

  if (!data) {
    return html`<section><${Errors} errors=${overview.error ? [overview.error] : []} />
      ${overview.loading && html`<p class="note">Loading…</p>`}</section>`;
  }
  const { project, status } = data;
  return html`<section class="project">
    <h1>${project.name}</h1>
    ${project.description && html`<p>${project.description}</p>`}
    <${Errors} errors=${[...(overview.error ? [overview.error] : []), ...errors.errors]}
      onDismiss=${errors.dismiss} />
    <${Notice} text=${notice} />
    <dl class="facts">
      <dt>Labeled images</dt><dd class="labeled">${status.labeled} of ${status.images}</dd>
      <dt>Pending review</dt><dd><a href=${href("review", projectId)}>${status.pending_candidates}</a></dd>
      <dt>Converged</dt><dd>${status.converged ? "yes" : "no"}</dd>
      <dt>Per image</dt><dd class="knowledge">${project.class_names.map((name) =>
        html`<div key=${name}>${knowledgeSummary(name, project.knowledge[name])}</div>`)}</dd>
      <dt>Auto-accept</dt><dd class="auto-accept">${project.auto_accept_threshold === null
        ? "off: every candidate is reviewed"
        : `match score ${project.auto_accept_threshold} and above`}</dd>
    </dl>
    ${latest ? html`<${RoundCard} round=${latest} admin=${admin}
        onCancel=${() => act(() => api.cancelRound(projectId, latest.number),
          `Asked round ${latest.number} to stop.`)} />`
      : html`<p class="note">No round yet.</p>`}
    ${admin && !running && html`<${StartRound} busy=${busy}
      modelSettings=${project.model_settings} proposalSettings=${project.proposal_settings}
      onStart=${(settings) =>
      act(() => api.startRound(projectId, settings), "Round started.")} />`}
    <${ExportCard} projectId=${projectId} />
    <${ModelsCard} projectId=${projectId} refresh=${data.rounds.length + (running ? 0.5 : 0)} />
    ${admin && html`<${SettingsCard} key=${project.id} project=${project}
      onSaved=${() => overview.reload()} />`}
    <${MembersCard} projectId=${projectId} canEdit=${admin}
      onOwnRoleChanged=${() => overview.reload()} />
  </section>`;
}
