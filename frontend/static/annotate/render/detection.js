/** Detection output: boxes over the image (SVG in image pixels) with class label chips. */

import { placeChips } from "./chips.js";
import { categoryColor, categoryName, inkOn } from "./colors.js";
import { el, imageFrame, onImage, pixelSvg, svgEl } from "./dom.js";

export const showsInput = false;

/**
 * Place the frame's chips for its current size and zoom. The chips sit in the zooming layer
 * but are scaled back (CSS `--zoom`) so they read the same at every zoom; their spots are in
 * the layer's unzoomed pixels.
 */
function layOut(frame, chips, objects, item) {
  // The frame itself never zooms (its layer does): its box is the unzoomed image.
  const { width, height } = frame.getBoundingClientRect();
  if (!width || !height) return; // not on screen yet: the resize observer calls again
  const zoom = Number(frame.style.getPropertyValue("--zoom")) || 1;
  const k = width / item.width;
  const boxes = objects.map(({ bbox: [x, y, w, h] }) => ({ x: x * k, y: y * k, w: w * k,
    h: h * k }));
  const sizes = chips.map((chip) => ({ w: chip.offsetWidth / zoom, h: chip.offsetHeight / zoom }));
  const order = objects.map((_, i) => i)
    .sort((a, b) => (objects[b].score ?? 0) - (objects[a].score ?? 0));
  placeChips(boxes, sizes, width, height, order).forEach((spot, i) => {
    chips[i].style.left = `${spot.x}px`;
    chips[i].style.top = `${spot.y}px`;
  });
}

export function fill(body, output, item, project) {
  const { width, height } = item;
  const frame = imageFrame(item.image_url, width, height, "Image with the detected objects");
  const svg = pixelSvg(width, height);
  const layer = el("div", { class: "chips" });
  const objects = output.objects ?? [];
  const chips = objects.map((object) => {
    const [x, y, w, h] = object.bbox;
    const color = categoryColor(project.categories, object.category_id);
    svg.append(svgEl("rect", { x, y, width: w, height: h, stroke: color, fill: color,
      class: "box" }));
    const score = typeof object.score === "number" ? ` ${object.score.toFixed(2)}` : "";
    const name = categoryName(project.categories, object.category_id);
    const chip = el("span", { class: "chip", text: name + score });
    chip.style.background = color;
    chip.style.color = inkOn(color);
    layer.append(chip);
    return chip;
  });
  onImage(frame, svg, layer);
  body.append(frame);
  const place = () => layOut(frame, chips, objects, item);
  new ResizeObserver(place).observe(frame);
  frame.addEventListener("zoomchange", place);
  const summary = objects.length === 1 ? "1 object" : `${objects.length} objects`;
  return { images: [item.image_url], summary };
}
