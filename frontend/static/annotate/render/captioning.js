/** Captioning output: the caption as text, beside the image it describes (shown once). */

import { el } from "./dom.js";

export const showsInput = true;

export function fill(body, output) {
  body.classList.add("caption-body");
  body.append(el("p", { class: "caption", text: output.caption ?? "" }));
  return { images: [] };
}
