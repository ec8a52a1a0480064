/**
 * The annotate page: shows one task at a time, takes the answer from the keyboard (or the
 * buttons), and moves on at once to the next task, which was leased and drawn in advance.
 *
 * Requests run one after another on a single queue, in the order the annotator acted: the
 * answer to a screen reaches the server before the task after it is asked for, so the server
 * never hands back a task whose answer is still on its way. An answer's reply carries the task
 * to preload next (`next_task`), so answering takes one request.
 */

import * as api from "./api.js";
import { COMMON_KEYS, POINTER_HELP, VIEW_KEYS, bindKeys, keyCap, modeKeys } from "./keyboard.js";
import { categoryColor, inkOn } from "./render/colors.js";
import { renderTask } from "./render/index.js";
import { toast } from "./toast.js";
import { ZOOM_STEP, stageZoom } from "./zoom.js";

const project = JSON.parse(document.getElementById("project-data").textContent);
const stage = document.getElementById("stage");
const controls = document.getElementById("mode-controls");
const progress = document.getElementById("progress");
const help = document.getElementById("help");
const instructions = document.getElementById("instructions");
const zoom = stageZoom(stage);

const state = {
  screen: null, // {task, view, key, shownAt}: what the annotator sees now
  next: null, // the same for the preloaded task
  ranking: [], // panel indices, best first (ranking mode)
  busy: false, // an undo is on its way: keys wait
  doneToday: 0,
  total: 0,
  preloaded: [], // Image objects, kept so the browser keeps their pixels
};

let queue = Promise.resolve();
/** Run `work` after everything queued before it, whatever became of that. */
function enqueue(work) {
  const run = queue.then(work);
  queue = run.catch(() => {});
  return run;
}

function prepare(task) {
  const view = renderTask(task, project);
  for (const url of view.images) {
    const img = new Image();
    img.src = url;
    state.preloaded.push(img);
  }
  state.preloaded = state.preloaded.slice(-24);
  return { task, view, key: api.newIdempotencyKey(), shownAt: 0 };
}

const HELP_KEY = COMMON_KEYS.filter((entry) => entry.action.type === "help");

function keymap() {
  // While the overlay is open its own keys (Esc, Tab, Enter on Close) work as usual.
  if (help.open) return HELP_KEY;
  const panelCount = state.screen ? state.screen.task.candidates.length : 0;
  const own = state.screen ? modeKeys(project.rating_mode, panelCount) : [];
  return [...own, ...COMMON_KEYS, ...VIEW_KEYS];
}

// aria-keyshortcuts names keys by their values, with "+" between keys.
const ARIA_KEYS = { "?": "Shift+?", "+": "Plus" };

function button(entry, extraClass = "") {
  const node = document.createElement("button");
  node.type = "button";
  node.className = `btn key-btn ${extraClass}`.trim();
  node.dataset.key = entry.key;
  node.setAttribute("aria-keyshortcuts", ARIA_KEYS[entry.key] ?? entry.key);
  node.title = entry.help;
  const kbd = document.createElement("kbd");
  kbd.textContent = keyCap(entry.key);
  const label = document.createElement("span");
  label.className = "key-label";
  label.textContent = entry.label;
  node.append(kbd, " ", label);
  node.addEventListener("click", () => act(entry.action));
  return node;
}

function renderControls() {
  controls.replaceChildren();
  if (!state.screen) return;
  for (const entry of modeKeys(project.rating_mode, state.screen.task.candidates.length)) {
    controls.append(button(entry, `mode-${entry.action.type}`));
  }
}

function renderHelp() {
  const list = help.querySelector("dl");
  list.replaceChildren();
  const panelCount = state.screen?.task.candidates.length ?? project.ranking_k;
  const entries = [...modeKeys(project.rating_mode, panelCount), ...COMMON_KEYS, ...VIEW_KEYS]
    .map((entry) => ({ cap: keyCap(entry.key), help: entry.help }));
  for (const { cap, help: text } of [...entries, ...POINTER_HELP]) {
    const term = document.createElement("dt");
    const kbd = document.createElement("kbd");
    kbd.textContent = cap;
    term.append(kbd);
    const description = document.createElement("dd");
    description.textContent = text;
    list.append(term, description);
  }
}

function showProgress() {
  progress.textContent = `${state.doneToday} of ${state.total} today`;
}

function takeProgress(task) {
  if (task?.progress) {
    state.doneToday = task.progress.done_today;
    state.total = task.progress.total;
  }
}

function showMessage(kind) {
  state.screen = null;
  const template = document.getElementById(`${kind}-template`);
  stage.replaceChildren(template.content.cloneNode(true));
  stage.setAttribute("aria-busy", String(kind === "loading"));
  renderControls();
}

function show(screen) {
  state.screen = screen;
  clearRanking(); // a screen shown again (after an undo) starts unranked
  stage.replaceChildren(screen.view.element);
  // Each screen starts whole and with its outputs shown: an answer is given having seen them.
  setOutputsHidden(false);
  zoom.reset();
  stage.setAttribute("aria-busy", "false");
  stage.dataset.taskId = String(screen.task.id);
  renderControls();
  showProgress();
  screen.shownAt = performance.now();
}

/** The screen to show after this one; its task id is on the stage for tests and debugging. */
function setNext(screen) {
  state.next = screen;
  stage.dataset.preloaded = screen ? String(screen.task.id) : "";
}

/** Lease and draw the task after the current one, once the requests before it are done. */
function preloadNext() {
  const screen = state.screen;
  if (!screen) return;
  enqueue(async () => {
    const task = await api.nextTask(project.id, { after: screen.task.id });
    // Only for the screen it was asked for: the annotator may have moved on (or undone) since.
    if (state.screen === screen && task && task.id !== screen.task.id) setNext(prepare(task));
  }).catch((error) => toast(`Could not load the next task: ${error.message}`));
}

/**
 * The next screen: the preloaded one at once, else whatever the server has after the queue.
 * `preload: false` when the request just queued brings the task after it (an answer).
 */
function advance({ preload = true } = {}) {
  const next = state.next;
  setNext(null);
  if (next) {
    show(next);
    if (preload) preloadNext();
    return;
  }
  showMessage("loading");
  enqueue(async () => {
    const task = await api.nextTask(project.id);
    takeProgress(task);
    if (task) {
      show(prepare(task));
      preloadNext();
    } else {
      showMessage("empty");
      showProgress();
    }
  }).catch((error) => {
    showMessage("error");
    toast(`Could not load a task: ${error.message}`);
  });
}

function submit(answer) {
  const screen = state.screen;
  const body = {
    answer,
    idempotency_key: screen.key,
    time_spent_ms: Math.round(performance.now() - screen.shownAt),
  };
  // The screen shown next; the answer's reply brings the task to preload after it.
  const upcoming = state.next;
  const after = upcoming ? upcoming.task.id : null;
  enqueue(() => api.withRetry(() => api.answerTask(screen.task.id, body, { after })))
    .then((reply) => {
      state.doneToday += 1;
      showProgress();
      const task = reply?.next_task;
      // Only for the screen it was asked for: the annotator may have moved on (or undone) since.
      if (upcoming && state.screen === upcoming && !state.next && task && task.id !== after) {
        setNext(prepare(task));
      }
    })
    .catch((error) => {
      toast(`Your answer to task ${screen.task.id} was not saved: ${error.message}`);
      if (upcoming && state.screen === upcoming && !state.next) preloadNext();
    });
  advance({ preload: !upcoming });
}

function skip() {
  const screen = state.screen;
  enqueue(() => api.skipTask(screen.task.id)).catch((error) =>
    toast(`Could not skip task ${screen.task.id}: ${error.message}`),
  );
  advance();
}

function undo() {
  const current = state.screen;
  state.busy = true;
  stage.setAttribute("aria-busy", "true");
  enqueue(() => api.undoLast(project.id))
    .then((task) => {
      if (!task) {
        toast("There is nothing to undo.", { kind: "info" });
        return;
      }
      // The screen left behind is still leased to this annotator: it comes back next.
      setNext(current);
      takeProgress(task);
      show(prepare(task));
      const undone = task.undone === "skip"
        ? "The task you skipped is back."
        : "Your last answer was withdrawn: answer it again.";
      toast(undone, { kind: "info" });
    })
    .catch((error) => toast(`Could not undo: ${error.message}`))
    .finally(() => {
      state.busy = false;
      stage.setAttribute("aria-busy", "false");
    });
}

function rank(panelIndex) {
  const panels = state.screen.view.panels;
  if (panelIndex >= panels.length || state.ranking.includes(panelIndex)) return;
  state.ranking.push(panelIndex);
  const panel = panels[panelIndex];
  panel.classList.add("ranked");
  panel.querySelector(".rank").textContent = `Rank ${state.ranking.length}`;
  if (state.ranking.length === panels.length) submitRanking();
}

function submitRanking() {
  const panels = state.screen.view.panels;
  if (state.ranking.length < panels.length - 1) {
    const needed = panels.length - 1;
    toast(`Rank at least ${needed} outputs first: press their numbers, best first.`, {
      kind: "info",
    });
    return;
  }
  const order = [...state.ranking];
  for (let i = 0; i < panels.length; i += 1) if (!order.includes(i)) order.push(i);
  submit({ ranking: order.map((i) => state.screen.task.candidates[i].id) });
}

function clearRanking() {
  state.ranking = [];
  for (const panel of state.screen.view.panels) {
    panel.classList.remove("ranked");
    panel.querySelector(".rank").textContent = "";
  }
}

function toggleHelp() {
  if (help.open) {
    help.close();
  } else {
    renderHelp();
    help.showModal();
  }
}

function setOutputsHidden(hidden) {
  stage.classList.toggle("outputs-hidden", hidden);
  for (const node of document.querySelectorAll("[data-key='h']")) {
    node.setAttribute("aria-pressed", String(hidden));
  }
}

/** The view keys: they change what is seen of the screen, never the answer. */
function actOnView(action) {
  if (action.type === "outputs") {
    setOutputsHidden(!stage.classList.contains("outputs-hidden"));
  } else if (action.value === 0) {
    zoom.reset();
  } else {
    zoom.zoomBy(action.value > 0 ? ZOOM_STEP : 1 / ZOOM_STEP);
  }
}

function act(action) {
  if (action.type === "help") return toggleHelp();
  if (action.type === "instructions") {
    instructions.hidden = !instructions.hidden;
    return;
  }
  if (action.type === "outputs" || action.type === "zoom") return actOnView(action);
  if (help.open || state.busy) return;
  if (action.type === "undo") return undo();
  if (!state.screen) return; // loading or no more tasks: nothing to answer
  switch (action.type) {
    case "score":
      return submit({ score: action.value });
    case "choice":
      return submit({ choice: action.value });
    case "rank":
      return rank(action.value);
    case "rank-submit":
      return submitRanking();
    case "rank-clear":
      return clearRanking();
    case "skip":
      return skip();
  }
}

function colorLegend() {
  for (const item of document.querySelectorAll("#legend li")) {
    const color = categoryColor(project.categories, Number(item.dataset.categoryId));
    item.style.background = color;
    item.style.color = inkOn(color);
  }
}

function start() {
  colorLegend();
  // On a narrow window the instructions would take the images' room: they wait for the I key.
  if (matchMedia("(max-width: 900px)").matches) instructions.hidden = true;
  bindKeys(keymap, act);
  for (const entry of COMMON_KEYS) {
    document.getElementById("common-controls").append(button(entry, "btn-quiet"));
  }
  for (const entry of VIEW_KEYS) {
    document.getElementById("view-controls").append(button(entry, "btn-quiet"));
  }
  setOutputsHidden(false);
  help.querySelector("[data-close]").addEventListener("click", () => help.close());
  advance();
}

start();
