/**
 * The reward-model page: while the training is queued or running, polls
 * `GET /api/reward-models/{id}/` every 2 s and keeps status and attempts current. When it ends
 * the page reloads once, and the server renders what it produced (held-out accuracy, error).
 */

import { request } from "../common/api.js";

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

if (!FINISHED.has(badge.dataset.status)) setTimeout(poll, POLL_MS);
