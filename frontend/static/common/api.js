/**
 * The one fetch wrapper of the pages' REST calls (docs/api.md): JSON in and out with the
 * session's CSRF token on writes; an error body (`{"detail", "errors": {field: [message, ...]}}`)
 * becomes an ApiError that carries both.
 */

export class ApiError extends Error {
  /**
   * @param {string} message what the server (or the network) said
   * @param {number} status HTTP status, 0 when the server was not reached
   * @param {Object<string, string[]>} errors a 400's messages by field (`name`, `config.lr`)
   */
  constructor(message, status, errors = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.errors = errors;
    // Only these are worth sending again: the request may never have arrived.
    this.retryable = status === 0 || status === 429 || status >= 500;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** The reply's JSON body (null for 204); ApiError for an error status or no server. */
export async function request(method, url, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken();
  }
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError("The server could not be reached.", 0);
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    // A proxy's HTML error page: the status says enough.
  }
  if (response.status === 401) {
    throw new ApiError("You are logged out: reload the page to log in again.", 401);
  }
  if (!response.ok) {
    throw new ApiError(data?.detail || `The server answered ${response.status}.`, response.status,
      data?.errors ?? {});
  }
  return data;
}
