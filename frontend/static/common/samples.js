/**
 * A tuning run's samples (`[{image_url, width, height, before, after}]`): each image with the
 * starting model's detections beside the tuned model's, drawn by the annotator UI's detection
 * renderer. Styles in tuning/run.css (.samples, .sample).
 */

import { fill as drawDetections } from "../annotate/render/detection.js";
import { el } from "../annotate/render/dom.js";

/** Fill `box` with one row per sample; `empty` (a "no samples" note) shown without any. */
export function drawSamples(box, empty, samples, { before, after, categories }) {
  box.replaceChildren(...samples.map((sample) => {
    const item = { image_url: sample.image_url, width: sample.width, height: sample.height };
    const side = (caption, output) => {
      const figure = el("figure", {}, [el("figcaption", { text: caption })]);
      drawDetections(figure, output, item, { categories });
      return figure;
    };
    return el("div", { class: "sample" }, [side(before, sample.before), side(after, sample.after)]);
  }));
  empty.hidden = samples.length > 0;
}
