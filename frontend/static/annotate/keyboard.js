/**
 * The keys of the annotate page. One table per rating mode drives three things, so they never
 * disagree: the key handler, the on-screen buttons (each shows its key) and the "?" overlay.
 */

const SCALE_LABELS = ["Bad", "Poor", "Fair", "Good", "Excellent"];

function entry(key, label, help, type, value, also = []) {
  return { key, label, help, action: { type, value }, also };
}

/**
 * The mode's own keys. An action is {type, value}: score (1-5), choice (A/B/tie),
 * rank (panel index, 0-based), rank-submit, rank-clear.
 */
export function modeKeys(ratingMode, panelCount) {
  if (ratingMode === "scale") {
    return SCALE_LABELS.map((label, i) =>
      entry(String(i + 1), label, `Score ${i + 1}: ${label.toLowerCase()}`, "score", i + 1),
    );
  }
  if (ratingMode === "pairwise") {
    return [
      entry("a", "A is better", "A is better", "choice", "A"),
      entry("t", "Tie", "Tie: equally good", "choice", "tie"),
      entry("b", "B is better", "B is better", "choice", "B"),
    ];
  }
  const rankKeys = Array.from({ length: panelCount }, (_, i) =>
    entry(String(i + 1), `Output ${i + 1}`, `Give output ${i + 1} the next rank (best first)`,
      "rank", i),
  );
  return [
    ...rankKeys,
    entry("Enter", "Submit", "Submit the ranking (the one left out is last)", "rank-submit"),
    entry("Backspace", "Clear", "Clear the ranking", "rank-clear"),
  ];
}

/** Keys every mode has. */
export const COMMON_KEYS = [
  entry("s", "Skip", "Skip this task", "skip"),
  entry("u", "Undo", "Undo your last answer or skip (again: the one before)", "undo"),
  entry("i", "Instructions", "Show or hide the instructions", "instructions"),
  entry("?", "Keys", "Show or hide this list of keys", "help"),
];

/** Keys that change how the image is seen, never the answer. */
export const VIEW_KEYS = [
  entry("h", "Hide outputs", "Hide or show the drawn outputs, to see the image under them",
    "outputs"),
  entry("+", "Zoom in", "Zoom in (the mouse wheel zooms around the pointer)", "zoom", 1, ["="]),
  entry("-", "Zoom out", "Zoom out", "zoom", -1),
  entry("0", "Reset zoom", "Show the whole image again", "zoom", 0),
];

/** Pointer gestures, for the help overlay: {cap, help}. */
export const POINTER_HELP = [
  { cap: "Wheel", help: "Zoom in or out around the pointer" },
  { cap: "Drag", help: "Move the zoomed image" },
];

/** How a key is written on a button or in the help. */
export function keyCap(key) {
  return { Enter: "↵ Enter", Backspace: "⌫", Escape: "Esc" }[key] ?? key.toUpperCase();
}

/**
 * Listen for the keys in `keymap` on the document; `onAction(action)` gets the action of the
 * key pressed. Key repeats and keys with Ctrl/Alt/Meta are left to the browser, so holding a
 * key cannot answer twice and browser shortcuts keep working. Returns a function that unbinds.
 */
export function bindKeys(getKeymap, onAction) {
  function onKeyDown(event) {
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;
    const pressed = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const entry = getKeymap().find((item) => item.key === pressed || item.also.includes(pressed));
    if (!entry) return;
    event.preventDefault();
    onAction(entry.action);
  }
  document.addEventListener("keydown", onKeyDown);
  return () => document.removeEventListener("keydown", onKeyDown);
}
