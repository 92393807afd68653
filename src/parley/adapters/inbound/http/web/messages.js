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

/**
 * The card of a tool call waiting for the user's approval (API.md "Approving tool calls"):
 * the tool and its arguments (editable as JSON), an optional reason, and the three decisions.
 * `decide({decision, reason?, arguments?})` is called with the user's choice; it returns a
 * message to show under the card when the decision could not be sent, else nothing.
 */
export function approvalItem(approval, decide) {
  const card = Object.assign(document.createElement('form'), { className: 'approval' });
  card.dataset.approvalId = approval.id;
  const asked = Object.assign(document.createElement('p'), { className: 'asked' });
  const tool = Object.assign(document.createElement('code'), { textContent: approval.tool });
  asked.append('The agent wants to run ', tool, '. Allow it?');
  const args = Object.assign(document.createElement('textarea'), {
    className: 'arguments', rows: 3, spellcheck: false, value: JSON.stringify(approval.arguments, null, 2),
  });
  args.setAttribute('aria-label', 'Arguments (JSON)');
  const reason = Object.assign(document.createElement('input'), {
    className: 'reason', type: 'text', maxLength: 2000, placeholder: 'Reason, if you reject (optional)',
  });
  reason.setAttribute('aria-label', 'Reason');
  const problem = Object.assign(document.createElement('p'), { className: 'field-error', hidden: true });
  const buttons = Object.assign(document.createElement('div'), { className: 'decisions' });
  const button = (label, name) => Object.assign(document.createElement('button'), {
    type: 'button', textContent: label, className: `decide-${name}`,
  });
  const approve = button('Approve', 'approve');
  const reject = button('Reject', 'reject');
  const edit = button('Run with these arguments', 'edit');
  buttons.append(approve, edit, reject);
  card.append(asked, args, reason, buttons, problem);

  const send = async (body) => {
    problem.hidden = true;
    for (const b of buttons.children) b.disabled = true;
    const error = await decide(body);
    for (const b of buttons.children) b.disabled = false;
    if (error) Object.assign(problem, { textContent: error, hidden: false });
  };
  approve.addEventListener('click', () => send({ decision: 'approve' }));
  reject.addEventListener('click', () => send({ decision: 'reject', reason: reason.value }));
  edit.addEventListener('click', () => {
    let edited;
    try {
      edited = JSON.parse(args.value);
    } catch {
      edited = null;
    }
    if (edited === null || typeof edited !== 'object' || Array.isArray(edited)) {
      Object.assign(problem, { textContent: 'The arguments must be a JSON object.', hidden: false });
      return;
    }
    send({ decision: 'edit', arguments: edited });
  });
  card.addEventListener('submit', (event) => event.preventDefault());
  return card;
}
