// What the start-round form sends. Pure functions.

/** Round settings as the form gives them: the JSON on top of the project's. With peer maps
 * asked for, "auto" as the model's perturbation unless the JSON names one (the server refuses
 * peer maps under any other, with a message saying so); without, peer maps turned off unless
 * the JSON says otherwise, since the server uses them by default under "auto". */
export function roundSettings(text, peerMaps) {
  const settings = text.trim() ? JSON.parse(text) : {};
  if (settings === null || typeof settings !== "object" || Array.isArray(settings)) {
    throw new SyntaxError('give an object, such as {"model": {"steps": 300}}');
  }
  if (!peerMaps) return "peer_maps" in settings ? settings : { ...settings, peer_maps: false };
  const model = { machine_augment: "auto", ...(settings.model || {}) };
  return { ...settings, model, peer_maps: true };
}

/** Whether a project's rounds use peer maps when the form says nothing: under the perturbation
 * "auto", which is the service's default where the project's model settings name none. */
export function peerMapsByDefault(modelSettings) {
  const policy = (modelSettings || {}).machine_augment;
  return policy === undefined || policy === "auto";
}
