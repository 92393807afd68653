// API failures shown where they belong: a 422's problems under their fields (each error
// list says which field it is for with data-error-for), anything else in plain words.

import { ApiError } from './api.js';

export function clearErrors(form) {
  for (const list of form.querySelectorAll('.field-error')) list.replaceChildren();
  for (const input of form.querySelectorAll('[aria-invalid]')) input.removeAttribute('aria-invalid');
}

/** Put each of a 422's problems under its field; what has no field goes to `fallback`. */
export function showFieldErrors(form, error, fallback) {
  const byField = error.fieldErrors();
  const unplaced = [];
  for (const [field, messages] of Object.entries(byField)) {
    const list = form.querySelector(`[data-error-for="${CSS.escape(field)}"]`);
    if (!list) {
      unplaced.push(...messages);
      continue;
    }
    for (const message of messages) list.append(Object.assign(document.createElement('li'), { textContent: message }));
    const input = form.querySelector(`[name="${CSS.escape(field)}"], [aria-describedby~="${CSS.escape(list.id)}"]`);
    input?.setAttribute('aria-invalid', 'true');
  }
  fallback(unplaced.length ? unplaced.join(' ') : (Object.keys(byField).length ? '' : error.message));
}

/** The plain words for an API failure that is not about one field. */
export function describe(error) {
  if (!(error instanceof ApiError)) return 'Parley cannot be reached. Check your connection and try again.';
  if (error.status === 429) {
    const wait = error.retryAfter !== null ? ` Try again in ${error.retryAfter} s.` : ' Try again later.';
    return `Too many requests (${error.message}).${wait}`;
  }
  if (error.status === 409 && error.message.includes('approval')) return `${error.message}: approve or reject it first.`;
  if (error.status === 409) return `${error.message}. Wait for it to finish (or stop it), then send again.`;
  if (error.status === 502 || error.status === 504) {
    return `${error.message} (HTTP ${error.status}). Try again in a moment.`;
  }
  if (error.status === 503) return 'Parley is unavailable right now (its database does not answer). Try again shortly.';
  return error.message;
}
