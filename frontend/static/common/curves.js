/**
 * Small-multiple curves: one SVG polyline per metric, by step, with its latest value (also a
 * dot, so a single point shows) and its range (the tuning run page's step metrics, the
 * reward-model page's held-out evaluations).
 * Styles in common/curves.css.
 */

import { el, svgEl } from "../annotate/render/dom.js";

/** Add one step's numbers to `series` (metric name -> [[step, value], ...]); null, text skipped. */
export function addStep(series, step, metrics) {
  for (const [name, value] of Object.entries(metrics)) {
    if (typeof value !== "number") continue;
    if (!series.has(name)) series.set(name, []);
    series.get(name).push([step, value]);
  }
}

function curve(name, points) {
  const steps = points.map(([step]) => step);
  const values = points.map(([, value]) => value);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  let [y0, y1] = [Math.min(...values), Math.max(...values)];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  // A 100 x 100 box stretched to the chart (strokes keep their width: non-scaling-stroke).
  const x = (step) => (x1 === x0 ? 50 : (100 * (step - x0)) / (x1 - x0));
  const y = (value) => 100 - (100 * (value - y0)) / (y1 - y0);
  const svg = svgEl("svg", { viewBox: "0 0 100 100", preserveAspectRatio: "none",
    role: "img", "aria-label": `${name} by step` });
  svg.append(svgEl("line", { x1: 0, y1: 100, x2: 100, y2: 100, class: "axis" }));
  svg.append(svgEl("polyline", {
    points: points.map(([step, value]) => `${x(step).toFixed(2)},${y(value).toFixed(2)}`)
      .join(" "),
  }));
  const [lastStep, latest] = points[points.length - 1];
  const shown = Number(latest.toPrecision(4)).toString();
  // The latest point as a dot over the chart (a circle in the stretched SVG would be an
  // ellipse): a curve of one point still shows it.
  const dot = el("span", { class: "point", title: `step ${lastStep}: ${shown}` });
  dot.style.left = `${x(lastStep)}%`;
  dot.style.top = `${y(latest)}%`;
  const head = el("h3", {}, [el("span", { text: name }),
    el("span", { class: "muted value", text: shown })]);
  return el("div", { class: "curve", "data-metric": name }, [head,
    el("div", { class: "plot" }, [svg, dot]),
    el("div", { class: "muted", text: `steps ${x0}-${x1} · ${y0.toPrecision(3)} to ${y1.toPrecision(3)}` })]);
}

/** One curve per series into `box`, by name; `empty` (a "nothing yet" note) shown without any. */
export function drawCurves(series, box, empty) {
  box.replaceChildren(...[...series.keys()].sort().map((name) => curve(name, series.get(name))));
  empty.hidden = series.size > 0;
}
