/** Colorization output: the colorized image, shown beside the greyscale input. */

import { imageFrame } from "./dom.js";

export const showsInput = true;

export function fill(body, output, item) {
  body.append(imageFrame(output.image_url, item.width, item.height, "Colorized image"));
  return { images: [output.image_url] };
}
