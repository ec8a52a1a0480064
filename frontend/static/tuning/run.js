/**
 * The tuning run page: polls `GET /api/tuning-runs/{id}/metrics/?after=<step>` every second and
 * draws one SVG polyline per metric (small multiples, common/curves.js), keeps status and
 * progress current, cancels or retries the run, and shows the sample outputs of the starting and
 * the tuned model side by side once the run has finished, drawn by the annotator UI's renderer
 * of the project's task (after the input image where that renderer shows the output apart from
 * it: a caption, a colorized image), with what its held-out selection kept (the API's sentence:
 * plainly so when it is the start). For a learned reward it also draws the learned reward and the
 * gold metric on one step axis, each line scaled to its own range, under the server's sentence
 * on whether the first rose while the second fell (reward hacking, `reward_hacking` of the run).
 */

import * as captioning from "../annotate/render/captioning.js";
import * as colorization from "../annotate/render/colorization.js";
import * as detection from "../annotate/render/detection.js";
import { el, imageFrame, svgEl } from "../annotate/render/dom.js";
import * as panoptic from "../annotate/render/panoptic.js";
import { request } from "../common/api.js";
import { addStep, drawCurves } from "../common/curves.js";

// Each logged step shows within about a second of the worker writing it.
const POLL_MS = 1000;
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const RENDERERS = { detection, captioning, colorization, panoptic };
const page = JSON.parse(document.getElementById("run-data").textContent);
let project = null; // the run's project ({task, categories}), read once
const series = new Map(); // metric name -> [[step, value], ...]
let lastStep = -1;
let polling = false; // a poll is in flight or scheduled
let hacking = page.hacking; // {learned, gold, hacking, summary}; null for a metric reward

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

/** The learned reward and the gold metric on one step axis (each scaled to its own range). */
function drawRewardVsGold() {
  if (!hacking) return;
  const names = [hacking.learned, hacking.gold].filter((name) => series.has(name));
  if (!names.length) return;
  const steps = names.flatMap((name) => series.get(name).map(([step]) => step));
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const x = (step) => (x1 === x0 ? 50 : (100 * (step - x0)) / (x1 - x0));
  const svg = svgEl("svg", { viewBox: "0 0 100 100", preserveAspectRatio: "none", role: "img",
    "aria-label": `${names.join(" and ")} by step` });
  svg.append(svgEl("line", { x1: 0, y1: 100, x2: 100, y2: 100, class: "axis" }));
  const legend = names.map((name, index) => {
    const points = series.get(name);
    const values = points.map(([, value]) => value);
    let [y0, y1] = [Math.min(...values), Math.max(...values)];
    if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
    const y = (value) => 100 - (100 * (value - y0)) / (y1 - y0);
    svg.append(svgEl("polyline", { class: `line-${index}`, points: points
      .map(([step, value]) => `${x(step).toFixed(2)},${y(value).toFixed(2)}`).join(" ") }));
    return el("span", { class: `legend line-${index}`,
      text: `${name}: ${y0.toPrecision(3)} to ${y1.toPrecision(3)}` });
  });
  document.getElementById("reward-gold-chart").replaceChildren(el("div",
    { class: "curve combined", "data-metric": names.join("+") }, [el("h3", {}, legend),
      el("div", { class: "plot" }, [svg]),
      el("div", { class: "muted", text: `steps ${x0}-${x1} · each line on its own scale` })]));
}

function showHacking(verdict) {
  hacking = verdict;
  document.getElementById("reward-vs-gold").hidden = !verdict;
  if (!verdict) return;
  const note = document.getElementById("run-hacking");
  note.textContent = verdict.summary;
  note.className = verdict.hacking ? "run-hacking" : "muted";
  drawRewardVsGold();
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
  showHacking(run.reward_hacking);
  const selection = document.getElementById("run-selection");
  selection.textContent = run.selection?.summary ?? "-";
  selection.classList.toggle("run-kept-start",
    Boolean(run.selection?.enabled && !run.selection.improved));
  project ??= await request("GET", `/api/projects/${run.project}/`);
  const samples = document.getElementById("samples");
  samples.replaceChildren(...run.samples.map((sample) => sampleRow(sample, run, project)));
  document.getElementById("samples-empty").hidden = run.samples.length > 0;
}

function figure(caption, children = []) {
  return el("figure", {}, [el("figcaption", { text: caption }), ...children]);
}

/** One sample: [the input,] the starting model's output, the tuned model's output. */
function sampleRow(sample, run, { task, categories }) {
  const renderer = RENDERERS[task];
  const item = { image_url: sample.image_url, width: sample.width, height: sample.height };
  const figures = [];
  if (renderer.showsInput) {
    const title = task === "colorization" ? "Input (greyscale)" : "Image";
    figures.push(figure(title, [imageFrame(item.image_url, item.width, item.height, title)]));
  }
  const outputs = [[run.start_version.name, sample.before],
    [run.result_version?.name ?? "tuned", sample.after]];
  for (const [name, output] of outputs) {
    const side = figure(name);
    const drawn = renderer.fill(side, output, item, { task, categories });
    if (drawn.summary) side.querySelector("figcaption").textContent = `${name} · ${drawn.summary}`;
    figures.push(side);
  }
  const row = el("div", { class: `sample task-${task}` }, figures);
  row.style.setProperty("--columns", String(figures.length));
  return row;
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
      drawRewardVsGold();
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
