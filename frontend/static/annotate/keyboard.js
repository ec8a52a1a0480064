/**
 * The keys of the annotate page. One table per rating mode drives three things, so they never
 * disagree: the key handler, the on-screen buttons (each shows its key) and the "?" overlay.
 */

const SCALE_LABELS = ["Bad", "Poor", "Fair", "Good", "Excellent"];

/**
 * The mode's own keys. An action is {type, value}: score (1-5), choice (A/B/tie),
 * rank (panel index, 0-based), rank-submit, rank-clear.
 */
export function modeKeys(ratingMode, panelCount) {
  if (ratingMode === "scale") {
    return SCALE_LABELS.map((label, i) => ({
      key: String(i + 1),
      label,
      help: `Score ${i + 1}: ${label.toLowerCase()}`,
      action: { type: "score", value: i + 1 },
    }));
  }
  if (ratingMode === "pairwise") {
    return [
      { key: "a", label: "A is better", help: "A is better", action: { type: "choice", value: "A" } },
      { key: "t", label: "Tie", help: "Tie: equally good", action: { type: "choice", value: "tie" } },
      { key: "b", label: "B is better", help: "B is better", action: { type: "choice", value: "B" } },
    ];
  }
  const rankKeys = Array.from({ length: panelCount }, (_, i) => ({
    key: String(i + 1),
    label: `Output ${i + 1}`,
    help: `Give output ${i + 1} the next rank (press best first)`,
    action: { type: "rank", value: i },
  }));
  return [
    ...rankKeys,
    { key: "Enter", label: "Submit", help: "Submit the ranking (the one left is last)", action: { type: "rank-submit" } },
    { key: "Backspace", label: "Clear", help: "Clear the ranking", action: { type: "rank-clear" } },
  ];
}

/** Keys every mode has. */
export const COMMON_KEYS = [
  { key: "s", label: "Skip", help: "Skip this task", action: { type: "skip" } },
  { key: "u", label: "Undo", help: "Undo your last answer", action: { type: "undo" } },
  { key: "i", label: "Instructions", help: "Show or hide the instructions", action: { type: "instructions" } },
  { key: "?", label: "Keys", help: "Show or hide this list of keys", action: { type: "help" } },
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
    const entry = getKeymap().find((item) => item.key === pressed);
    if (!entry) return;
    event.preventDefault();
    onAction(entry.action);
  }
  document.addEventListener("keydown", onKeyDown);
  return () => document.removeEventListener("keydown", onKeyDown);
}
