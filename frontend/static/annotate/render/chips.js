/**
 * Where label chips go so that none covers another on a crowded image: each chip tries above
 * its box, then below it, then inside its top edge, then further off in a stack above or below;
 * failing those, the free spot nearest its box among the corners of the chips placed so far. A
 * spot must stay on the image and clear of every chip placed before. Higher-scored boxes are
 * placed first, so they get the spots next to their boxes.
 */

// Chips that touch read as one: each keeps this much clear around it.
const GAP = 1;

function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), Math.max(low, high));
}

/** The heights to try for a chip of height `h` on `box`, nearest the box first. */
function rowsFor(box, h, height) {
  const rows = [box.y - h, box.y + box.h, box.y];
  for (let k = 1; k * h <= height; k += 1) rows.push(box.y + box.h + k * h, box.y - (k + 1) * h);
  return rows;
}

/** Spots beside the placed chips (and the image's edges), nearest to (x, y) first. */
function besidePlaced(placed, x, y, w, h, width, height) {
  const xs = [0, width - w, x, ...placed.flatMap((p) => [p.x + p.w, p.x - w])];
  const ys = [0, height - h, y, ...placed.flatMap((p) => [p.y + p.h, p.y - h])];
  const spots = xs.flatMap((left) => ys.map((top) => ({ x: left, y: top, w, h })));
  return spots.sort((a, b) => Math.hypot(a.x - x, a.y - y) - Math.hypot(b.x - x, b.y - y));
}

/**
 * The chips' rectangles {x, y, w, h}, one per box: `boxes` are {x, y, w, h}, `sizes` the chips'
 * {w, h}, all in one unit, on a width x height image; `order` lists the box indices in the
 * order they are placed. A chip with no free spot left anywhere sits inside its box.
 */
export function placeChips(boxes, sizes, width, height, order) {
  const placed = [];
  const spots = new Array(boxes.length);
  const fits = (rect) => rect.x >= 0 && rect.x + rect.w <= width + 1e-6 && rect.y >= 0
    && rect.y + rect.h <= height + 1e-6 && !placed.some((other) => overlaps(other, rect));
  for (const i of order) {
    const box = boxes[i];
    const w = sizes[i].w + GAP;
    const h = sizes[i].h + GAP;
    const x = clamp(box.x, 0, width - w);
    const spot = rowsFor(box, h, height).map((y) => ({ x, y, w, h })).find(fits)
      ?? besidePlaced(placed, x, box.y - h, w, h, width, height).find(fits)
      ?? { x, y: clamp(box.y, 0, height - h), w, h };
    placed.push(spot);
    spots[i] = spot;
  }
  return spots;
}
