// One chat message as a list item: its Markdown body (sanitised, see markdown.js), its
// status when it is not complete, and the tool calls of a reply being streamed.

import { renderMarkdown } from './markdown.js';

/** A message's <li>: role, Markdown body, and its status when not complete. */
export function messageItem(message) {
  const item = document.createElement('li');
  item.className = `message ${message.role}`;
  const body = Object.assign(document.createElement('div'), { className: 'body' });
  item.append(body);
  updateMessage(item, message);
  return item;
}

export function updateMessage(item, message) {
  if (message.id) item.dataset.messageId = message.id;
  item.dataset.status = message.status;
  renderMarkdown(item.querySelector('.body'), message.content);
  item.querySelector('.status')?.remove();
  if (message.status === 'incomplete' || message.status === 'failed') {
    const words = message.status === 'incomplete'
      ? 'Incomplete: the reply was stopped before it ended.'
      : `Failed${message.error ? `: ${message.error}` : ''}.`;
    item.append(Object.assign(document.createElement('p'), { className: `status ${message.status}`, textContent: words }));
  }
}

export function toolItem(call) {
  const details = Object.assign(document.createElement('details'), { className: 'tool' });
  const summary = Object.assign(document.createElement('summary'), { textContent: `Tool: ${call.name}` });
  const text = (value) => (typeof value === 'string' ? value : JSON.stringify(value));
  const args = Object.assign(document.createElement('code'), { textContent: text(call.arguments) });
  const result = Object.assign(document.createElement('code'), { textContent: text(call.result) });
  details.append(summary, 'arguments ', args, ' → ', result);
  return details;
}

/** Show a reply as the server stores it once its stream is cut: incomplete. */
export function markIncomplete(item, why = null) {
  item.classList.remove('streaming');
  item.dataset.status = 'incomplete';
  item.querySelector('.status')?.remove();
  const nothing = item.dataset.received ? '' : ' (nothing was written yet)';
  const words = `Incomplete: ${why ? `${why}; ` : ''}the reply was stopped before it ended${nothing}.`;
  item.append(Object.assign(document.createElement('p'), { className: 'status incomplete', textContent: words }));
}
