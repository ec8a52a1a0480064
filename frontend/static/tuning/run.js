/**
 * The tuning run page: polls `GET /api/tuning-runs/{id}/metrics/?after=<step>` every 2 s and
 * draws one SVG polyline per metric (small multiples, common/curves.js), keeps status and
 * progress current, cancels or retries the run, and shows the sample outputs of the starting and the tuned model
 * side by side (drawn by the annotator UI's detection renderer) once the run has finished, with
 * what its held-out selection kept (the API's sentence: plainly so when it is the start).
 */

import { fill as drawDetections } from "../annotate/render/detection.js";
import { el } from "../annotate/render/dom.js";
import { request } from "../common/api.js";
import { addStep, drawCurves } from "../common/curves.js";

const POLL_MS = 2000;
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const page = JSON.parse(document.getElementById("run-data").textContent);
const series = new Map(); // metric name -> [[step, value], ...]
let lastStep = -1;
let polling = false; // a poll is in flight or scheduled

function showStatus({ status, step, total_steps: total }) {
  const badge = document.getElementById("run-status");
  badge.textContent = status;
  badge.dataset.status = status;
  const bar = document.getElementById("run-progress");
  bar.max = total;
  bar.value = step;
  document.getElementById("run-steps").textContent = `${step} / ${total}`;
  document.getElementById("cancel-run").hidden = FINISHED.has(status);
  document.getElementById("retry-run").hidden = status !== "failed" && status !== "cancelled";
}

/** The tuned version's figures that exist: mAP needs ground truth, the learned reward a model. */
function resultText({ name, metrics }) {
  const learned = metrics.learned_reward;
  return name + (metrics.map != null ? `: mAP ${metrics.map}` : "") +
    (learned ? ` · learned reward ${learned.before} → ${learned.after}` : "");
}

async function showDetails() {
  const run = await request("GET", `/api/tuning-runs/${page.id}/`);
  document.getElementById("run-worker").textContent =
    `${run.worker || "-"} (attempt ${run.attempts})`;
  const error = document.getElementById("run-error");
  error.textContent = run.error;
  error.hidden = !run.error;
  if (run.result_version) {
    document.getElementById("run-result").textContent = resultText(run.result_version);
  }
  const selection = document.getElementById("run-selection");
  selection.textContent = run.selection?.summary ?? "-";
  selection.classList.toggle("run-kept-start",
    Boolean(run.selection?.enabled && !run.selection.improved));
  const samples = document.getElementById("samples");
  samples.replaceChildren(...run.samples.map((sample) => {
    const item = { image_url: sample.image_url, width: sample.width, height: sample.height };
    const side = (caption, output) => {
      const figure = el("figure", {}, [el("figcaption", { text: caption })]);
      drawDetections(figure, output, item, page);
      return figure;
    };
    return el("div", { class: "sample" }, [
      side(run.start_version.name, sample.before),
      side(run.result_version?.name ?? "tuned", sample.after),
    ]);
  }));
  document.getElementById("samples-empty").hidden = run.samples.length > 0;
}

async function poll() {
  polling = true;
  try {
    const data = await request("GET", `/api/tuning-runs/${page.id}/metrics/?after=${lastStep}`);
    for (const { step, metrics } of data.steps) {
      addStep(series, step, metrics);
      lastStep = Math.max(lastStep, step);
    }
    if (data.steps.length) {
      drawCurves(series, document.getElementById("curves"), document.getElementById("curves-empty"));
    }
    const changed = document.getElementById("run-status").dataset.status !== data.status;
    showStatus(data);
    if (changed) await showDetails();
    // A page of steps may not hold all of them yet: keep reading until the last one.
    if (FINISHED.has(data.status) && data.steps.length === 0) {
      polling = false;
      return;
    }
  } catch (error) {
    document.getElementById("curves-empty").textContent = `Could not load metrics: ${error.message}`;
    document.getElementById("curves-empty").hidden = false;
  }
  setTimeout(poll, POLL_MS);
}

async function act(action) {
  try {
    showStatus(await request("POST", `/api/tuning-runs/${page.id}/${action}/`));
    await showDetails();
    if (!polling) poll(); // polling had stopped at the end of the run

  } catch (error) {
    window.alert(error.message);
  }
}

document.getElementById("cancel-run").addEventListener("click", () => act("cancel"));
document.getElementById("retry-run").addEventListener("click", () => act("retry"));
showDetails();
poll();
