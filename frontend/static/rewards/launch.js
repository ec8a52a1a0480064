/**
 * The launch form of a project's reward models: posts `{name, config, policy}` to
 * `POST /api/projects/{id}/reward-models/` and opens the new reward model's page. A refusal's
 * errors stand under their fields (`name`; `policy`; `config` and its settings, `config.lr`),
 * the others (`project`, ...) above the button.
 */

import { request } from "../common/api.js";

const page = JSON.parse(document.getElementById("reward-models-data").textContent);
const form = document.getElementById("launch-form");
const inputs = {
  name: form.elements.name, policy: form.elements.policy, config: form.elements.config,
};
const boxes = {
  name: document.getElementById("launch-name-error"),
  policy: document.getElementById("launch-policy-error"),
  config: document.getElementById("launch-config-error"),
  form: document.getElementById("launch-error"),
};

/** Which box a field's errors go to: its input's, or the form's. */
function boxFor(field) {
  const head = field.split(".")[0];
  return head in inputs ? head : "form";
}

function showErrors(errors, detail) {
  const lines = { name: [], policy: [], config: [], form: [] };
  for (const [field, messages] of Object.entries(errors)) {
    const box = boxFor(field);
    // A setting's messages may lack its name ("must be a number"): say which setting.
    const named = (m) => (field.includes(".") && !m.startsWith(field) ? `${field}: ${m}` : m);
    lines[box].push(...messages.map(named));
  }
  if (!Object.values(lines).some((l) => l.length)) lines.form.push(detail);
  for (const [box, text] of Object.entries(lines)) {
    boxes[box].textContent = text.join("\n");
    boxes[box].hidden = text.length === 0;
    if (box in inputs) inputs[box].setAttribute("aria-invalid", String(text.length > 0));
  }
}

async function launch(event) {
  event.preventDefault();
  let config;
  try {
    config = JSON.parse(inputs.config.value.trim() || "{}");
  } catch (error) {
    showErrors({ config: [`not valid JSON: ${error.message}`] });
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const created = await request("POST", `/api/projects/${page.project}/reward-models/`,
      { name: inputs.name.value.trim(), config, policy: Number(inputs.policy.value) || null });
    window.location.assign(`/rewards/${created.id}/`);
  } catch (error) {
    showErrors(error.errors ?? {}, error.message);
  } finally {
    button.disabled = false;
  }
}

form.addEventListener("submit", launch);
