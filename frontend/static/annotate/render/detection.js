/** Detection output: boxes over the image (SVG in image pixels) with class label chips. */

import { categoryColor, categoryName, inkOn } from "./colors.js";
import { el, imageFrame, pixelSvg, svgEl } from "./dom.js";

export const showsInput = false;

export function fill(body, output, item, project) {
  const { width, height } = item;
  const frame = imageFrame(item.image_url, width, height, "Image with the detected objects");
  const svg = pixelSvg(width, height);
  const chips = el("div", { class: "chips" });
  const objects = output.objects ?? [];
  for (const object of objects) {
    const [x, y, w, h] = object.bbox;
    const color = categoryColor(project.categories, object.category_id);
    svg.append(svgEl("rect", { x, y, width: w, height: h, stroke: color, fill: color,
      class: "box" }));
    const score = typeof object.score === "number" ? ` ${object.score.toFixed(2)}` : "";
    const name = categoryName(project.categories, object.category_id);
    const chip = el("span", { class: "chip", text: name + score });
    chip.style.background = color;
    chip.style.color = inkOn(color);
    // Percentages of the frame are percentages of the image: chips stay on their boxes at any
    // size.
    chip.style.left = `${(100 * x) / width}%`;
    chip.style.top = `${(100 * y) / height}%`;
    if (y < height * 0.12) chip.classList.add("inside");
    chips.append(chip);
  }
  frame.append(svg, chips);
  body.append(frame);
  const summary = objects.length === 1 ? "1 object" : `${objects.length} objects`;
  return { images: [item.image_url], summary };
}
