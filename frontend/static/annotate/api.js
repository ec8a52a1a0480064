/**
 * The REST calls the annotate page makes (docs/api.md), through the pages' one fetch wrapper
 * (common/api.js: the session's CSRF token, error bodies as ApiError).
 */

import { ApiError, request } from "../common/api.js";

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
