/**
 * Panoptic output: the segment map as a translucent overlay with outlines.
 *
 * The segment ids come from a COCO panoptic PNG (id = R + 256 G + 65536 B): `png_url` where the
 * import stored one beside its own overlay, else `overlay_url` (docs/api.md). Its colours are
 * ids, not meant for eyes, so it is repainted here with the category colours of the legend and
 * each segment's border is drawn as an SVG path in image pixels. An `overlay_url` that is
 * already translucent (a drawn overlay, no ids) is shown as it is.
 */

import { categoryColor, rgbOf } from "./colors.js";
import { el, imageFrame, onImage, pixelSvg, svgEl } from "./dom.js";

export const showsInput = false;

const FILL_ALPHA = 110; // of 255: the image stays readable under the colours

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`could not load ${url}`));
    img.src = url;
  });
}

function pixelsOf(img) {
  const canvas = el("canvas", { width: img.naturalWidth, height: img.naturalHeight });
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(img, 0, 0);
  return context.getImageData(0, 0, img.naturalWidth, img.naturalHeight).data;
}

/** Segment ids per pixel, or null when the PNG is see-through: a drawn overlay, not ids. */
function segmentIds(pixels) {
  const ids = new Int32Array(pixels.length / 4);
  for (let i = 0; i < ids.length; i += 1) {
    if (pixels[4 * i + 3] !== 255) return null;
    ids[i] = pixels[4 * i] + 256 * pixels[4 * i + 1] + 65536 * pixels[4 * i + 2];
  }
  return ids;
}

/** One path of unit edges wherever two neighbouring pixels belong to different segments. */
function outlinePath(ids, width, height) {
  const parts = [];
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = y * width + x;
      if (x + 1 < width && ids[i] !== ids[i + 1]) parts.push(`M${x + 1} ${y}v1`);
      if (y + 1 < height && ids[i] !== ids[i + width]) parts.push(`M${x} ${y + 1}h1`);
    }
  }
  return parts.join("");
}

async function paint(canvas, outline, url, segments, categories) {
  const img = await loadImage(url);
  const { naturalWidth: width, naturalHeight: height } = img;
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const ids = segmentIds(pixelsOf(img));
  if (ids === null) {
    context.drawImage(img, 0, 0);
    return;
  }
  const colorOf = new Map(
    segments.map((segment) => [segment.id, rgbOf(categoryColor(categories, segment.category_id))]),
  );
  const painted = context.createImageData(width, height);
  for (let i = 0; i < ids.length; i += 1) {
    const rgb = colorOf.get(ids[i]);
    if (!rgb) continue; // id 0 and unlisted ids are void: left clear
    painted.data.set([rgb[0], rgb[1], rgb[2], FILL_ALPHA], 4 * i);
  }
  context.putImageData(painted, 0, 0);
  outline.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const d = outlinePath(ids, width, height);
  const halo = svgEl("path", { d, class: "outline-halo" });
  outline.append(halo, svgEl("path", { d, class: "outline" }));
}

export function fill(body, output, item, project) {
  const frame = imageFrame(item.image_url, item.width, item.height, "Image with the segments");
  const canvas = el("canvas", { class: "overlay", "aria-hidden": "true" });
  const outline = pixelSvg(item.width, item.height);
  onImage(frame, canvas, outline);
  body.append(frame);
  const segments = output.segments ?? [];
  const url = output.png_url ?? output.overlay_url;
  paint(canvas, outline, url, segments, project.categories).catch(() => {
    body.append(el("p", { class: "note", text: "The segment map could not be loaded." }));
  });
  const summary = segments.length === 1 ? "1 segment" : `${segments.length} segments`;
  return { images: [url], summary };
}
