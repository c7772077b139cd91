// What the start-round form sends. A pure function.

/** Round settings as the form gives them: the JSON on top of the project's, and with peer
 * maps asked for, "auto" as the model's perturbation unless the JSON names one (the server
 * refuses peer maps under any other, with a message saying so). */
export function roundSettings(text, peerMaps) {
  const settings = text.trim() ? JSON.parse(text) : {};
  if (!peerMaps) return settings;
  const model = { machine_augment: "auto", ...(settings.model || {}) };
  return { ...settings, model, peer_maps: true };
}
