/**
 * The next round's button: posts `{samples, temperature}` to
 * `POST /api/model-versions/{id}/generate-candidates/` and says how many items a worker will
 * run the version on; a refusal's errors stand under their fields.
 */

import { request } from "../common/api.js";
import { clearErrors, showErrors } from "../common/form_errors.js";

const form = document.getElementById("next-round");
const queued = document.getElementById("round-queued");

function number(input) {
  const text = input.value.trim();
  return text === "" || Number.isNaN(Number(text)) ? text : Number(text);
}

async function generate(event) {
  event.preventDefault();
  const fields = form.elements;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  clearErrors(form);
  queued.hidden = true;
  try {
    const done = await request("POST",
      `/api/model-versions/${fields.model_version.value}/generate-candidates/`,
      { samples: number(fields.samples), temperature: number(fields.temperature) });
    const name = fields.model_version.selectedOptions[0].textContent;
    queued.textContent = `Queued: a worker runs ${name} on ${done.items} items ` +
      `(${done.samples} output${done.samples === 1 ? "" : "s"} each); their tasks appear in ` +
      "the annotators' queue when it is done.";
    queued.hidden = false;
  } catch (error) {
    showErrors(form, error.errors ?? {}, error.message);
  } finally {
    button.disabled = false;
  }
}

form.addEventListener("submit", generate);
