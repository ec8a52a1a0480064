/**
 * A 400's errors by field (common/api.js's ApiError.errors) shown next to a form's fields.
 * Each field's box is the element `[data-error-for="<field>"]`; a field without one falls back
 * to its head (`data.source` -> `data`), then to `[data-error-for="form"]`, which also takes
 * the detail when no field is named. The input named like the field is marked aria-invalid.
 */

function boxOf(form, field) {
  const exact = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
  if (exact) return exact;
  const head = form.querySelector(`[data-error-for="${CSS.escape(field.split(".")[0])}"]`);
  return head ?? form.querySelector('[data-error-for="form"]');
}

/** Show `errors` ({field: [message, ...]}) under their fields; `detail` when none is named. */
export function showErrors(form, errors, detail = "") {
  const lines = new Map();
  for (const [field, messages] of Object.entries(errors)) {
    const box = boxOf(form, field);
    if (!lines.has(box)) lines.set(box, []);
    lines.get(box).push(...messages.map((m) => (box.dataset.errorFor === field ||
      m.startsWith(field) ? m : `${field}: ${m}`)));
  }
  if (lines.size === 0 && detail) lines.set(boxOf(form, "form"), [detail]);
  for (const box of form.querySelectorAll("[data-error-for]")) {
    const text = lines.get(box) ?? [];
    box.textContent = text.join("\n");
    box.hidden = text.length === 0;
    const input = form.elements.namedItem(box.dataset.errorFor);
    if (input?.setAttribute) input.setAttribute("aria-invalid", String(text.length > 0));
  }
}

/** Hide every error box of the form. */
export function clearErrors(form) {
  showErrors(form, {});
}
