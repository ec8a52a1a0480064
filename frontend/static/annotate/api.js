/**
 * The REST calls the annotate page makes (docs/api.md), through one fetch wrapper that sends
 * the session's CSRF token and turns error bodies ({"detail": ...}) into ApiError.
 */

export class ApiError extends Error {
  /**
   * @param {string} message what the server (or the network) said
   * @param {number} status HTTP status, 0 when the server was not reached
   */
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    // Only these are worth sending again: the request may never have arrived.
    this.retryable = status === 0 || status === 429 || status >= 500;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

async function request(method, url, body) {
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
    throw new ApiError(data?.detail || `The server answered ${response.status}.`, response.status);
  }
  return data;
}

/**
 * Call `send` until it succeeds, again only on errors that may not have reached the server.
 * The caller keeps the body (and so its idempotency key) the same on every try.
 */
export async function withRetry(send, { attempts = 4, firstDelayMs = 300 } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await send();
    } catch (error) {
      if (!(error instanceof ApiError) || !error.retryable || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, firstDelayMs * 2 ** (attempt - 1)));
    }
  }
}

/** A key that names one screen's answer, so a retried POST is stored once. */
export function newIdempotencyKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; plain http on a LAN address is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  const parts = [[0, 8], [8, 12], [12, 16], [16, 20], [20, 32]];
  return parts.map(([start, end]) => hex.slice(start, end)).join("-");
}

/** The next task for this annotator, or null when their queue is empty. */
export function nextTask(projectId, { after = null } = {}) {
  const query = after === null ? "" : `?after=${encodeURIComponent(after)}`;
  return request("GET", `/api/projects/${projectId}/next-task/${query}`);
}

/**
 * Store an answer: body is {answer, idempotency_key, time_spent_ms}. The reply is the stored
 * answer with `next_task`: the annotator's next task, not `after` (one they hold already), or
 * null when their queue is empty.
 */
export function answerTask(taskId, body, { after = null } = {}) {
  const query = after === null ? "" : `?after=${encodeURIComponent(after)}`;
  return request("POST", `/api/tasks/${taskId}/answer/${query}`, body);
}

export function skipTask(taskId) {
  return request("POST", `/api/tasks/${taskId}/skip/`, {});
}

/** Withdraw the last answer; its task (leased again), or null when there is nothing to undo. */
export async function undoLast(projectId) {
  try {
    return await request("POST", `/api/projects/${projectId}/undo/`, {});
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}
