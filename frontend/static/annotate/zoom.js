/**
 * Zoom and pan of the images on the annotate page's stage. Every frame of a screen (both panes
 * of an A/B screen, all of a ranking) shows the same part of the image, so outputs are compared
 * on the same pixels. The view is a zoom factor and the layer's offset, in fractions of the
 * frame: a point p of the frame (0..1) shows the image at (p - offset) / zoom, whatever the
 * frame's size in pixels. Each frame's `.zoom-layer` (the image and all its overlays) takes the
 * one transform, so the outputs stay on their pixels; `zoomchange` on a frame tells its
 * renderer to lay its labels out again.
 */

export const ZOOM_STEP = 1.25;
const MAX_ZOOM = 8;
// A wheel notch (deltaY 100) zooms by about the key's step.
const WHEEL_RATE = Math.log(ZOOM_STEP) / 100;

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

/** Zoom and pan for the frames inside `stage`; the pointer gestures are bound to it. */
export function stageZoom(stage) {
  const view = { zoom: 1, x: 0, y: 0 };

  function frames() {
    return stage.querySelectorAll(".frame");
  }

  function apply({ zoomed = true } = {}) {
    // The image always covers its frame: no empty margin is panned into view.
    view.x = clamp(view.x, 1 - view.zoom, 0);
    view.y = clamp(view.y, 1 - view.zoom, 0);
    const transform = view.zoom === 1 ? ""
      : `translate(${view.x * 100}%, ${view.y * 100}%) scale(${view.zoom})`;
    for (const frame of frames()) {
      frame.style.setProperty("--zoom", String(view.zoom));
      frame.classList.toggle("zoomed", view.zoom > 1);
      frame.querySelector(".zoom-layer").style.transform = transform;
      if (zoomed) frame.dispatchEvent(new CustomEvent("zoomchange"));
    }
    stage.dataset.zoom = String(Math.round(view.zoom * 1000) / 1000);
  }

  /** Zoom by `factor`, keeping the image under the frame point (fx, fy) where it is. */
  function zoomBy(factor, fx = 0.5, fy = 0.5) {
    const zoom = clamp(view.zoom * factor, 1, MAX_ZOOM);
    if (zoom === view.zoom) return;
    view.x = fx - ((fx - view.x) / view.zoom) * zoom;
    view.y = fy - ((fy - view.y) / view.zoom) * zoom;
    view.zoom = zoom;
    apply();
  }

  function reset() {
    view.zoom = 1;
    view.x = 0;
    view.y = 0;
    apply();
  }

  function frameAt(event) {
    return event.target.closest?.(".frame");
  }

  stage.addEventListener("wheel", (event) => {
    const frame = frameAt(event);
    if (!frame) return;
    event.preventDefault();
    const box = frame.getBoundingClientRect();
    const delta = event.deltaMode === WheelEvent.DOM_DELTA_LINE ? event.deltaY * 33 : event.deltaY;
    zoomBy(Math.exp(-delta * WHEEL_RATE), (event.clientX - box.left) / box.width,
      (event.clientY - box.top) / box.height);
  }, { passive: false });

  stage.addEventListener("pointerdown", (event) => {
    const frame = frameAt(event);
    if (!frame || view.zoom === 1 || event.button !== 0) return;
    event.preventDefault();
    frame.setPointerCapture(event.pointerId);
    frame.classList.add("panning");
    const box = frame.getBoundingClientRect();
    let last = { x: event.clientX, y: event.clientY };
    const move = (moved) => {
      view.x += (moved.clientX - last.x) / box.width;
      view.y += (moved.clientY - last.y) / box.height;
      last = { x: moved.clientX, y: moved.clientY };
      apply({ zoomed: false }); // a pan moves the labels with the layer: no new layout
    };
    const end = () => {
      frame.classList.remove("panning");
      frame.removeEventListener("pointermove", move);
      frame.removeEventListener("pointerup", end);
      frame.removeEventListener("pointercancel", end);
    };
    frame.addEventListener("pointermove", move);
    frame.addEventListener("pointerup", end);
    frame.addEventListener("pointercancel", end);
  });

  return { zoomBy, reset };
}
