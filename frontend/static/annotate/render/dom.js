/** Small DOM builders the renderers share: elements, SVG elements and the image frame. */

const SVG_NS = "http://www.w3.org/2000/svg";

export function el(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

export function svgEl(tag, attributes = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

// Small images (Synthetic Shapes are 64-96 px) are scaled up; smoothing would blur their edges.
const PIXELATED_BELOW = 256;

/**
 * A box with the aspect ratio of a width x height image, as large as its panel allows, holding
 * the image in a layer that zooms and pans as one (../zoom.js). Overlays put in that layer
 * (`onImage`) with `inset: 0` line up with the image pixel for pixel at every zoom.
 */
export function imageFrame(url, width, height, alt) {
  const frame = el("div", { class: "frame" });
  frame.style.setProperty("--ar", String(width / height));
  const img = el("img", {
    src: url, alt, width: String(width), height: String(height), draggable: "false",
  });
  if (Math.max(width, height) < PIXELATED_BELOW) frame.classList.add("pixelated");
  frame.append(el("div", { class: "zoom-layer" }, [img]));
  return frame;
}

/** Put overlays on a frame's image, in the layer that zooms with it. */
export function onImage(frame, ...overlays) {
  frame.querySelector(".zoom-layer").append(...overlays);
}

/** An SVG layer over a frame whose user units are pixels of the width x height image. */
export function pixelSvg(width, height) {
  return svgEl("svg", {
    class: "overlay",
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    "aria-hidden": "true",
  });
}
