/**
 * Builds one task's screen: a panel per candidate (plus the input image where the output is
 * shown apart from it), each filled by the renderer of the project's vision task.
 */

import * as captioning from "./captioning.js";
import * as colorization from "./colorization.js";
import * as detection from "./detection.js";
import { el, imageFrame } from "./dom.js";
import * as panoptic from "./panoptic.js";

const RENDERERS = { detection, captioning, colorization, panoptic };

function panel(badge, title) {
  const header = el("header", { class: "panel-head" });
  if (badge) header.append(el("span", { class: "badge", text: badge }));
  header.append(el("span", { class: "panel-title", text: title }));
  header.append(el("span", { class: "rank", "aria-live": "polite" }));
  const body = el("div", { class: "panel-body" });
  return { node: el("section", { class: "panel" }, [header, body]), header, body };
}

/** What a candidate's panel is called: its key in the current mode. */
function badgeFor(ratingMode, candidate, index) {
  if (ratingMode === "pairwise") return candidate.label ?? "AB"[index];
  if (ratingMode === "ranking") return String(index + 1);
  return "";
}

/**
 * The screen of `task` as a detached element, with the candidates' panels in order and the
 * image URLs it shows (to preload them). Drawing that needs a loaded image finishes on its own.
 */
export function renderTask(task, project) {
  const renderer = RENDERERS[project.task];
  if (!renderer) throw new Error(`no renderer for the task "${project.task}"`);
  const screen = el("div", { class: `panels task-${project.task}` });
  const images = [task.item.image_url];
  if (renderer.showsInput) {
    const input = panel("", project.task === "colorization" ? "Input (greyscale)" : "Image");
    input.node.classList.add("panel-input");
    const { image_url: url, width, height } = task.item;
    input.body.append(imageFrame(url, width, height, "Input image"));
    screen.append(input.node);
  }
  const panels = task.candidates.map((candidate, index) => {
    const badge = badgeFor(task.rating_mode, candidate, index);
    const title = task.rating_mode === "scale" ? "Model output" : "Output";
    const { node, header, body } = panel(badge, title);
    const drawn = renderer.fill(body, candidate.output, task.item, project);
    images.push(...drawn.images);
    if (drawn.summary) {
      header.querySelector(".panel-title").textContent = `${title} · ${drawn.summary}`;
    }
    node.dataset.candidateId = String(candidate.id);
    screen.append(node);
    return node;
  });
  screen.style.setProperty("--columns", String(screen.children.length));
  screen.dataset.columns = String(screen.children.length); // narrow windows wrap 3 or more
  screen.style.setProperty("--outputs", String(panels.length));
  return { element: screen, panels, images };
}
