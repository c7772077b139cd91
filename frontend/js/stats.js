// The round dashboard's numbers, derived from GET /rounds, /rounds/{n}/statistics and
// /status. Pure functions: the charts and the table both read these.

export const BANDS = Array.from({ length: 10 }, (_, i) => {
  const low = i / 10;
  return `${low.toFixed(1)}-${(low + 0.1).toFixed(1)}`;
});

/** Candidates per tenth of the match score, every band present (zero when empty). */
export function histogram(statistics) {
  const bands = (statistics && statistics.score_bands) || {};
  return BANDS.map((band) => ({ label: band, value: (bands[band] || {}).candidates || 0 }));
}

/** Acceptance rate per band among decided candidates; null where nothing was decided. */
export function acceptanceByBand(statistics) {
  const bands = (statistics && statistics.score_bands) || {};
  return BANDS.map((band) => {
    const entry = bands[band] || {};
    const rate = entry.decided ? entry.accepted / entry.decided : null;
    return { label: band, value: rate, decided: entry.decided || 0, accepted: entry.accepted || 0 };
  });
}

/** Labeled-set size at the start of each round, then now. */
export function labeledOverRounds(status) {
  const points = (status.labeled_over_rounds || [])
    .filter((r) => r.labeled_at_start !== null && r.labeled_at_start !== undefined)
    .map((r) => ({ label: `round ${r.round}`, value: r.labeled_at_start }));
  points.push({ label: "now", value: status.labeled });
  return points;
}

export function valDiceOverRounds(rounds) {
  return rounds
    .filter((r) => r.metrics && r.metrics.model && typeof r.metrics.model.val_dice === "number")
    .map((r) => ({ label: `round ${r.number}`, value: r.metrics.model.val_dice }));
}

/** One table row per round. */
export function roundRow(round, statistics) {
  const s = statistics || {};
  const decided = (s.accepted || 0) + (s.edited || 0) + (s.rejected || 0);
  const model = (round.metrics && round.metrics.model) || {};
  return {
    number: round.number,
    status: round.status,
    candidates: s.candidates ?? round.counts.candidates ?? 0,
    pending: s.pending || 0,
    accepted: s.accepted || 0,
    edited: s.edited || 0,
    rejected: s.rejected || 0,
    superseded: s.superseded || 0,
    acceptance: decided ? (s.accepted || 0) / decided : null,
    meanScore: round.counts.mean_score ?? null,
    meanEditDice: s.mean_edit_dice ?? null,
    labeledAtStart: round.counts.labeled_at_start ?? null,
    valDice: typeof model.val_dice === "number" ? model.val_dice : null,
    trainImages: model.train_images ?? null,
    perturbation: perturbation(model),
  };
}

/** The perturbation policy a round's model trained under, "(chosen)" when the round chose
 * it on validation Dice among several (model setting machine_augment "auto"), the policies
 * whose models' maps were averaged with its own (round setting peer_maps) and those left out
 * as the validation labels showed them worse. */
export function perturbation(model) {
  if (!model.augment) return null;
  const tried = model.augment_choice ? Object.keys(model.augment_choice.val_dice || {}) : [];
  let text = tried.length > 1 ? `${model.augment} (chosen of ${tried.join(", ")})` : model.augment;
  const peers = (model.peers || []).map((peer) => peer.augment);
  if (peers.length) text += `, maps averaged with ${peers.join(", ")}`;
  const left = (model.peer_screen || []).filter((s) => !s.kept).map((s) => s.policy);
  if (left.length) text += `, ${left.join(", ")} left out (worse on validation)`;
  return text;
}

/** A round axis maximum that reads well: 1, 2, 5 or 10 times a power of ten. */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}
