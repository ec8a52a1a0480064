/**
 * The reward-model page: draws the held-out evaluations of its training (the page data's
 * `history`) as the tuning run page draws its steps (common/curves.js). While the training is
 * queued or running, polls `GET /api/reward-models/{id}/` every 2 s and keeps status and
 * attempts current; when it ends the page reloads once, and the server renders what it produced.
 */

import { request } from "../common/api.js";
import { addStep, drawCurves } from "../common/curves.js";

const POLL_MS = 2000;
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const page = JSON.parse(document.getElementById("reward-model-data").textContent);
const badge = document.getElementById("rm-status");

async function poll() {
  try {
    const data = await request("GET", `/api/reward-models/${page.id}/`);
    if (FINISHED.has(data.status)) {
      window.location.reload();
      return;
    }
    badge.textContent = data.status;
    badge.dataset.status = data.status;
    document.getElementById("rm-attempts").textContent = String(data.attempts);
  } catch (error) {
    badge.textContent = `${badge.dataset.status} (could not refresh: ${error.message})`;
  }
  setTimeout(poll, POLL_MS);
}

const series = new Map();
for (const { step, ...metrics } of page.history) addStep(series, step, metrics);
drawCurves(series, document.getElementById("rm-curves"), document.getElementById("rm-curves-empty"));
if (!FINISHED.has(badge.dataset.status)) setTimeout(poll, POLL_MS);
