// The round dashboard: per round the match-score histogram and acceptance by score band,
// over rounds the labeled-set size and validation Dice; then the numbers as tables.

import { useState } from "preact/hooks";
import { api } from "../api.js";
import { Errors, html, useLoad } from "../components.js";
import { percent, score } from "../format.js";
import {
  acceptanceByBand, histogram, labeledOverRounds, roundRow, valDiceOverRounds,
} from "../stats.js";
import { BarChart, LineChart } from "./charts.js";

async function loadDashboard(projectId) {
  const [rounds, status] = await Promise.all([api.rounds(projectId), api.status(projectId)]);
  const statistics = await Promise.all(rounds.map((r) => api.statistics(projectId, r.number)));
  return { rounds, status, statistics };
}

const num = (value, digits = 3) => (value === null || value === undefined ? "–"
  : Number(value).toFixed(digits));

function RoundTable({ rows }) {
  // a wide table scrolls inside its box instead of widening the page
  return html`<div class="table-scroll"><table class="list numbers rounds-table">
    <thead><tr><th>Round</th><th>Status</th><th>Candidates</th><th>Pending</th>
      <th>Accepted</th><th>Edited</th><th>Rejected</th>
      <th title="Replaced before a decision: by a later round's candidate, a new label of the image, or the round's cancellation">Superseded</th>
      <th title="Accepted as they were, among the decided (accepted, edited, rejected)">Acceptance</th><th>Mean score</th>
      <th>Mean edit Dice</th><th>Labeled at start</th><th>Train images</th><th>Val Dice</th>
      <th>Perturbation</th></tr></thead>
    <tbody>${rows.map((r) => html`<tr key=${r.number} data-round=${r.number}>
      <td>${r.number}</td><td>${r.status}</td><td>${r.candidates}</td><td>${r.pending}</td>
      <td>${r.accepted}</td><td>${r.edited}</td><td>${r.rejected}</td><td>${r.superseded}</td>
      <td>${percent(r.acceptance)}</td><td>${num(r.meanScore)}</td><td>${num(r.meanEditDice)}</td>
      <td>${r.labeledAtStart ?? "–"}</td><td>${r.trainImages ?? "–"}</td><td>${num(r.valDice)}</td>
      <td>${r.perturbation ?? "–"}</td>
    </tr>`)}</tbody>
  </table></div>`;
}

function BandTable({ bars, bands }) {
  return html`<table class="list numbers bands-table">
    <thead><tr><th>Score band</th><th>Candidates</th><th>Decided</th><th>Accepted</th>
      <th>Acceptance</th></tr></thead>
    <tbody>${bands.map((b, i) => html`<tr key=${b.label}>
      <td>${b.label}</td><td>${bars[i].value}</td><td>${b.decided}</td><td>${b.accepted}</td>
      <td>${percent(b.value)}</td></tr>`)}</tbody>
  </table>`;
}

export function DashboardScreen({ projectId }) {
  const { data, error, loading } = useLoad(() => loadDashboard(projectId), [projectId]);
  const [chosen, setChosen] = useState(null);
  if (!data) {
    return html`<section><${Errors} errors=${error ? [error] : []} />
      ${loading && html`<p class="note">Loading…</p>`}</section>`;
  }
  const { rounds, status, statistics } = data;
  if (rounds.length === 0) return html`<section><h1>Rounds</h1><p class="note">No round yet.</p></section>`;
  const index = chosen === null ? rounds.length - 1 : chosen;
  const round = rounds[index];
  const bars = histogram(statistics[index]);
  const bands = acceptanceByBand(statistics[index]);
  return html`<section class="dashboard">
    <h1>Rounds</h1>
    <${Errors} errors=${error ? [error] : []} />
    <label>Round <select name="dashboard-round" value=${index}
        onChange=${(e) => setChosen(Number(e.target.value))}>
      ${rounds.map((r, i) => html`<option key=${r.number} value=${i}>${r.number} (${r.status})</option>`)}
    </select></label>
    <div class="charts">
      <${BarChart} name="histogram" title=${`Match scores, round ${round.number} (candidates)`}
        data=${bars} />
      <${BarChart} name="acceptance" title=${`Acceptance by score band, round ${round.number}`}
        data=${bands} max=${1} format=${(v) => percent(v)} />
      <${LineChart} name="labeled" title="Labeled images over rounds"
        data=${labeledOverRounds(status)} />
      <${LineChart} name="dice" title="Validation Dice over rounds" data=${valDiceOverRounds(rounds)}
        max=${1} format=${(v) => score(v)} empty=${"No round has a validation Dice yet: a round " +
          "holds out some human labels for it once there are enough."} />
    </div>
    <h2>All rounds</h2>
    <${RoundTable} rows=${rounds.map((r, i) => roundRow(r, statistics[i]))} />
    <h2>Score bands, round ${round.number}</h2>
    <${BandTable} bars=${bars} bands=${bands} />
  </section>`;
}
