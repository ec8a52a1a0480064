/** Non-blocking messages in a polite live region: they never take the focus or stop the keys. */

const SHOW_MS = 5000;

export function toast(message, { kind = "error" } = {}) {
  const region = document.getElementById("toasts");
  const note = document.createElement("div");
  note.className = `toast toast-${kind}`;
  note.textContent = message;
  region.append(note);
  setTimeout(() => note.remove(), SHOW_MS);
}
