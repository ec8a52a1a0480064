/**
 * The home page's "Starting models" section: while a demo training is queued or running
 * (`data-active`), the page is fetched again every few seconds and the section swapped for its
 * fresh copy, so the template stays the one place that words a training's state.
 */

const POLL_MS = 3000;

async function refresh() {
  const section = document.getElementById("demo-training");
  if (!section || section.dataset.active !== "true") return;
  try {
    const response = await fetch(window.location.href, { credentials: "same-origin" });
    if (response.ok) {
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("demo-training");
      if (fresh) section.replaceWith(fresh);
    }
  } catch {
    // The server is restarting: try again at the next tick.
  }
  setTimeout(refresh, POLL_MS);
}

setTimeout(refresh, POLL_MS);
