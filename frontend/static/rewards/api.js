/**
 * The one fetch the reward-model pages make: JSON in and out with the session's CSRF token.
 * It never throws: the caller reads `status` (0 when the server was not reached) and the body
 * (`{"detail", "errors": {field: [message, ...]}}` on errors, docs/api.md).
 */

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function call(method, url, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken();
  }
  let response;
  try {
    response = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { status: 0, data: { detail: "The server could not be reached.", errors: {} } };
  }
  // A proxy's HTML error page has no JSON body: the status says enough.
  const data = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  return { status: response.status, data };
}
