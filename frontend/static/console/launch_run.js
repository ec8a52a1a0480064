/**
 * The launch form of a project's tuning runs: posts `{start_version, reward, reward_model,
 * config, data, save_every}` to `POST /api/projects/{id}/tuning-runs/` and opens the new run's
 * live page. `config` holds the settings that differ from the trainer's defaults (the page data's
 * `defaults`); a refusal's errors stand under their fields (`config.lr`, `start_version`, ...).
 */

import { request } from "../common/api.js";
import { clearErrors, showErrors } from "../common/form_errors.js";

const page = JSON.parse(document.getElementById("runs-data").textContent);
const form = document.getElementById("launch-form");

/** A setting's input as JSON: numbers as numbers (an empty or bad one as typed, refused). */
function valueOf(input) {
  if (input.dataset.kind === "bool") return input.checked;
  if (input.dataset.kind === "number") {
    return input.value.trim() === "" || Number.isNaN(Number(input.value)) ? input.value
      : Number(input.value);
  }
  return input.value;
}

function config() {
  const changed = {};
  for (const input of form.querySelectorAll("[name^='config.']")) {
    const name = input.name.slice("config.".length);
    const value = valueOf(input);
    if (value !== page.defaults[name]) changed[name] = value;
  }
  return changed;
}

function body() {
  const fields = form.elements;
  const saveEvery = fields.save_every.value.trim();
  return {
    start_version: Number(fields.start_version.value) || null,
    reward: fields.reward.value,
    reward_model: Number(fields.reward_model.value) || null,
    config: config(),
    data: fields.data.value ? { source: fields.data.value } : {},
    save_every: saveEvery === "" ? null : Number(saveEvery),
  };
}

async function launch(event) {
  event.preventDefault();
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  clearErrors(form);
  try {
    const run = await request("POST", `/api/projects/${page.project}/tuning-runs/`, body());
    window.location.assign(`/tuning/runs/${run.id}/`);
  } catch (error) {
    showErrors(form, error.errors ?? {}, error.message);
  } finally {
    button.disabled = false;
  }
}

form.addEventListener("submit", launch);
