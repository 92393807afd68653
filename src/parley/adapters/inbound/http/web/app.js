// Parley's web chat: log in, sessions, history and streamed replies (see API.md).
//
// Plain DOM, no framework: every text from the API goes in through textContent, except
// Markdown, which goes through markdown.js (escaped, sanitised, Trusted Types).

import { ApiError, Auth, parsed, register } from './api.js';
import { clearErrors, describe, showFieldErrors } from './errors.js';
import { renderMarkdown } from './markdown.js';
import { approvalItem, markIncomplete, messageItem, toolItem, updateMessage } from './messages.js';
import { serverSentEvents } from './sse.js';

const SESSIONS_PAGE = 20;
const HISTORY_PAGE = 30;
// The offline model labels every reply with this (parley's OFFLINE_PREFIX): the API has no
// field that names the model, so its label is what tells.
const OFFLINE_LABEL = '[offline model] ';
const OFFLINE_KEY = 'parley.offline-model';

const $ = (id) => document.getElementById(id);
const ui = {
  authView: $('auth-view'), authForm: $('auth-form'), tabLogin: $('tab-login'), tabRegister: $('tab-register'),
  email: $('email'), password: $('password'), passwordRules: $('password-rules'), authError: $('auth-error'),
  authSubmit: $('auth-submit'),
  chatView: $('chat-view'), sidebar: $('sidebar'), backdrop: $('sidebar-backdrop'), toggleSidebar: $('toggle-sidebar'),
  newSession: $('new-session'), sessionList: $('session-list'), sessionsStatus: $('sessions-status'),
  sessionsSentinel: $('sessions-sentinel'), userEmail: $('user-email'), logout: $('logout'),
  title: $('session-title'), renameButton: $('rename-session'), deleteButton: $('delete-session'),
  renameForm: $('rename-form'), renameInput: $('rename-input'), renameCancel: $('rename-cancel'),
  offlineBadge: $('offline-badge'), offlineBanner: $('offline-banner'),
  messages: $('messages'), historySentinel: $('history-sentinel'), historyStatus: $('history-status'),
  messageList: $('message-list'), emptyState: $('empty-state'), chatError: $('chat-error'),
  composer: $('composer'), input: $('composer-input'), send: $('send'), stop: $('stop'),
};

const auth = new Auth((why) => showAuth(why));
const state = {
  mode: 'login',
  sessions: [],
  sessionPages: null, // {cursor, done, load}: the list's pages, anew at each login
  current: null,
  history: null, // {session, cursor, done, load}: the open session's pages
  streaming: null, // the AbortController of the reply being streamed
  pendingReply: null, // its message's <li>, once it has one
};

// ---------------------------------------------------------------- log in / register

function setMode(mode) {
  state.mode = mode;
  const registering = mode === 'register';
  ui.tabLogin.setAttribute('aria-selected', String(!registering));
  ui.tabRegister.setAttribute('aria-selected', String(registering));
  ui.authSubmit.textContent = registering ? 'Create account' : 'Log in';
  ui.password.autocomplete = registering ? 'new-password' : 'current-password';
  ui.passwordRules.hidden = !registering;
  clearErrors(ui.authForm);
  ui.authError.textContent = '';
}

function showAuth(message = '') {
  abortStream();
  ui.chatView.hidden = true;
  ui.authView.hidden = false;
  ui.authError.textContent = message;
  ui.email.focus();
}

async function submitAuth(event) {
  event.preventDefault();
  clearErrors(ui.authForm);
  ui.authError.textContent = '';
  ui.authSubmit.disabled = true;
  const email = ui.email.value;
  const password = ui.password.value;
  try {
    if (state.mode === 'register') await register(email, password);
    await auth.logIn(email, password);
    ui.password.value = '';
    await enterChat();
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      showFieldErrors(ui.authForm, error, (text) => { ui.authError.textContent = text; });
    } else if (error instanceof ApiError && error.status === 400) {
      $('email-error').append(Object.assign(document.createElement('li'), { textContent: error.message }));
      ui.email.setAttribute('aria-invalid', 'true');
    } else {
      ui.authError.textContent = describe(error);
    }
  } finally {
    ui.authSubmit.disabled = false;
  }
}

// ---------------------------------------------------------------- sessions

async function enterChat() {
  // Anew before anything waits: a page still loading for the previous list is then dropped.
  state.sessions = [];
  state.sessionPages = { cursor: null, done: false, load: null };
  ui.sessionList.replaceChildren();
  ui.authView.hidden = true;
  ui.chatView.hidden = false;
  showOffline(sessionStorage.getItem(OFFLINE_KEY) === '1');
  auth.plan();
  try {
    const me = await auth.json('users/me');
    ui.userEmail.textContent = me.email;
  } catch (error) {
    if (!auth.loggedIn) return; // showAuth already ran
    showChatError(describe(error));
  }
  await loadSessions();
  const session = (await linkedSession()) || state.sessions[0];
  if (session) await openSession(session);
  else await createSession();
}

/** The session the address names (#id, kept across a reload), if it is still there. */
async function linkedSession() {
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (!wanted) return null;
  const known = state.sessions.find((s) => s.id === wanted);
  if (known) return known;
  try {
    return await auth.json(`chat/sessions/${encodeURIComponent(wanted)}`); // on a later page
  } catch {
    return null;
  }
}

/** Load the next page of sessions (the one in flight, if any). */
function loadSessions() {
  const pages = state.sessionPages;
  if (!pages || pages.done || !auth.loggedIn || ui.chatView.hidden) return Promise.resolve();
  pages.load ||= loadSessionsPage(pages).finally(() => {
    pages.load = null;
  });
  return pages.load;
}

async function loadSessionsPage(pages) {
  ui.sessionsStatus.textContent = 'Loading…';
  let page;
  try {
    const query = new URLSearchParams({ limit: String(SESSIONS_PAGE) });
    if (pages.cursor) query.set('cursor', pages.cursor);
    page = await auth.json(`chat/sessions?${query}`);
  } catch (error) {
    if (state.sessionPages === pages) ui.sessionsStatus.textContent = describe(error);
    return;
  }
  if (state.sessionPages !== pages) return; // logged in anew meanwhile
  for (const session of page.items) {
    if (state.sessions.some((s) => s.id === session.id)) continue;
    state.sessions.push(session);
    ui.sessionList.append(sessionItem(session));
  }
  pages.cursor = page.next_cursor;
  pages.done = page.next_cursor === null;
  ui.sessionsStatus.textContent = '';
  const scroll = $('session-scroll');
  if (scroll.scrollHeight - scroll.scrollTop - scroll.clientHeight < 200) {
    setTimeout(loadSessions); // the list does not fill the view yet: the sentinel stays in sight
  }
}

function sessionItem(session) {
  const item = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'session';
  button.dataset.sessionId = session.id;
  const name = Object.assign(document.createElement('span'), { className: 'session-name', textContent: session.name });
  const count = Object.assign(document.createElement('span'), {
    className: 'session-count', textContent: String(session.message_count),
  });
  button.append(name, count);
  button.addEventListener('click', () => {
    const known = state.sessions.find((s) => s.id === session.id);
    if (known) openSession(known);
  });
  item.append(button);
  return item;
}

function refreshSessionItem(session, { toTop = false } = {}) {
  const button = ui.sessionList.querySelector(`[data-session-id="${CSS.escape(session.id)}"]`);
  const item = button ? button.parentElement : sessionItem(session);
  if (button) {
    button.querySelector('.session-name').textContent = session.name;
    button.querySelector('.session-count').textContent = String(session.message_count);
  }
  if (toTop || !button) {
    ui.sessionList.prepend(item);
    state.sessions = [session, ...state.sessions.filter((s) => s.id !== session.id)];
  }
  markCurrent();
}

/** A session renamed by the server (auto-named after its first exchange): list and header. */
function showSessionName(session, renamed) {
  Object.assign(session, renamed);
  refreshSessionItem(session);
  if (state.current === session && ui.title.hidden === false) ui.title.textContent = session.name;
}

function markCurrent() {
  for (const button of ui.sessionList.querySelectorAll('.session')) {
    const current = state.current && button.dataset.sessionId === state.current.id;
    button.classList.toggle('current', Boolean(current));
    if (current) button.setAttribute('aria-current', 'true');
    else button.removeAttribute('aria-current');
  }
}

async function createSession() {
  hideChatError();
  try {
    const session = await auth.json('chat/sessions', { method: 'POST', body: {} });
    refreshSessionItem(session, { toTop: true });
    await openSession(session);
  } catch (error) {
    showChatError(describe(error));
  }
}

async function openSession(session) {
  abortStream();
  hideChatError();
  cancelRename();
  state.current = session;
  history.replaceState(null, '', `#${encodeURIComponent(session.id)}`);
  ui.title.textContent = session.name;
  ui.renameButton.disabled = false;
  ui.deleteButton.disabled = false;
  ui.input.disabled = false;
  ui.send.disabled = false;
  markCurrent();
  closeSidebar();
  ui.messageList.replaceChildren();
  state.history = { session, cursor: null, done: false, load: null };
  await loadHistory();
  await showPendingApproval(session);
  ui.input.focus();
}

function startRename() {
  if (!state.current) return;
  ui.renameInput.value = state.current.name;
  clearErrors(ui.renameForm);
  ui.title.hidden = true;
  ui.renameForm.hidden = false;
  ui.renameInput.focus();
  ui.renameInput.select();
}

function cancelRename() {
  ui.renameForm.hidden = true;
  ui.title.hidden = false;
}

async function submitRename(event) {
  event.preventDefault();
  clearErrors(ui.renameForm);
  const session = state.current;
  try {
    const renamed = await auth.json(`chat/sessions/${encodeURIComponent(session.id)}`, {
      method: 'PATCH', body: { name: ui.renameInput.value },
    });
    Object.assign(session, renamed);
    ui.title.textContent = renamed.name;
    refreshSessionItem(session);
    cancelRename();
  } catch (error) {
    if (error instanceof ApiError && error.status === 422) {
      showFieldErrors(ui.renameForm, error, (text) => text && showChatError(text));
    } else {
      $('rename-error').append(Object.assign(document.createElement('li'), { textContent: describe(error) }));
    }
  }
}

async function deleteSession() {
  const session = state.current;
  if (!session || !window.confirm(`Delete “${session.name}” and all its messages?`)) return;
  abortStream();
  try {
    await auth.json(`chat/sessions/${encodeURIComponent(session.id)}`, { method: 'DELETE' });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) {
      showChatError(describe(error));
      return;
    }
  }
  state.sessions = state.sessions.filter((s) => s.id !== session.id);
  ui.sessionList.querySelector(`[data-session-id="${CSS.escape(session.id)}"]`)?.parentElement.remove();
  state.current = null;
  if (state.sessions[0]) await openSession(state.sessions[0]);
  else await createSession();
}

// ---------------------------------------------------------------- history

/** Load the open session's next older page of messages (the one in flight, if any). */
function loadHistory() {
  const pages = state.history;
  if (!pages || pages.done) return Promise.resolve();
  pages.load ||= loadHistoryPage(pages).finally(() => {
    pages.load = null;
  });
  return pages.load;
}

async function loadHistoryPage(pages) {
  const first = pages.cursor === null;
  ui.historyStatus.textContent = 'Loading…';
  let page;
  try {
    const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
    if (pages.cursor) query.set('before', pages.cursor);
    page = await auth.json(`chat/sessions/${encodeURIComponent(pages.session.id)}/messages?${query}`);
  } catch (error) {
    if (state.history === pages) ui.historyStatus.textContent = describe(error);
    return;
  }
  if (state.history !== pages) return; // another session was opened meanwhile
  // Older messages go on top without moving what the reader is looking at.
  const fromBottom = ui.messages.scrollHeight - ui.messages.scrollTop;
  ui.messageList.prepend(...page.items.map((message) => messageItem(message)));
  ui.messages.scrollTop = first ? ui.messages.scrollHeight : ui.messages.scrollHeight - fromBottom;
  pages.cursor = page.next_cursor;
  pages.done = page.next_cursor === null;
  ui.historyStatus.textContent = pages.done && ui.messageList.childElementCount > 0
    ? 'This is the start of the conversation.' : '';
  ui.emptyState.hidden = ui.messageList.childElementCount > 0;
  const replies = page.items.filter((m) => m.role === 'assistant');
  if (first && replies.length > 0) showOffline(replies.at(-1).content.startsWith(OFFLINE_LABEL));
  if (!pages.done && ui.messages.scrollTop < 200) setTimeout(loadHistory); // still in sight: go on
}

// ---------------------------------------------------------------- the message view

function showOffline(offline) {
  if (offline) sessionStorage.setItem(OFFLINE_KEY, '1');
  else sessionStorage.removeItem(OFFLINE_KEY);
  ui.offlineBadge.hidden = !offline;
  ui.offlineBanner.hidden = !offline;
}

function nearBottom() {
  return ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 80;
}

function scrollDown() {
  ui.messages.scrollTop = ui.messages.scrollHeight;
}

// ---------------------------------------------------------------- sending, streamed

function setStreaming(controller) {
  state.streaming = controller;
  ui.send.hidden = controller !== null;
  ui.stop.hidden = controller === null;
  ui.messages.setAttribute('aria-busy', String(controller !== null));
}

function abortStream() {
  state.streaming?.abort();
}

async function sendMessage(event) {
  event?.preventDefault();
  const session = state.current;
  const content = ui.input.value;
  if (!session || state.streaming || content.trim() === '') return;
  hideChatError();
  clearErrors(ui.composer);
  const controller = new AbortController();
  setStreaming(controller);
  const userItem = messageItem({ role: 'user', content, status: 'complete' });
  userItem.classList.add('pending');
  ui.messageList.append(userItem);
  ui.emptyState.hidden = true;
  ui.input.value = '';
  resizeInput();
  scrollDown();
  let reply = null;
  try {
    const response = await auth.fetch(`chat/sessions/${encodeURIComponent(session.id)}/messages/stream`, {
      method: 'POST', body: { content }, signal: controller.signal,
    });
    if (!response.ok) {
      const error = await errorFrom(response);
      userItem.remove();
      ui.input.value = content; // nothing was stored: give the text back
      if (error.status === 422) showFieldErrors(ui.composer, error, (text) => text && showChatError(text));
      else showChatError(describe(error));
      return;
    }
    reply = await streamReply(response, session, userItem);
  } catch (error) {
    if (error.name === 'AbortError') {
      if (reply === null) reply = state.pendingReply;
      if (reply) markIncomplete(reply);
      else userItem.classList.remove('pending');
    } else {
      showChatError(describe(error));
      if (state.pendingReply) markIncomplete(state.pendingReply, 'The connection was lost');
    }
  } finally {
    state.pendingReply = null;
    setStreaming(null);
    if (state.current === session) recount(session);
    if (state.current === session && !ui.input.disabled) ui.input.focus();
  }
}

async function errorFrom(response) {
  try {
    await parsed(response);
  } catch (error) {
    return error;
  }
  return new ApiError(response.status, null, null);
}

/** Show the session's new message count and move it to the top (most recently active). */
async function recount(session) {
  try {
    Object.assign(session, await auth.json(`chat/sessions/${encodeURIComponent(session.id)}`));
    refreshSessionItem(session, { toTop: true });
    if (state.current === session && ui.title.hidden === false) ui.title.textContent = session.name;
  } catch {
    // Deleted meanwhile, or offline: the list is refreshed at the next login.
  }
}

/** A reply's text so far, by its <li>: a reply paused for an approval goes on where it stopped. */
const replyText = new WeakMap();

/** Start a reply's <li> (with its tool list), streamed or paused, at the end of the list. */
function replyItem(text = '') {
  const item = messageItem({ role: 'assistant', content: text, status: 'complete' });
  item.prepend(Object.assign(document.createElement('div'), { className: 'tools' }));
  ui.messageList.append(item);
  replyText.set(item, text);
  return item;
}

/**
 * Read the reply's events into the message list; returns the reply's item. `continued`: the
 * item of a reply that paused for an approval, whose rest this stream is (it has no message event).
 */
async function streamReply(response, session, userItem, continued = null) {
  const item = continued ?? replyItem();
  item.classList.add('streaming');
  // Not "complete" until its done event says so (a reader, or a test, must not take it as ended).
  item.dataset.status = 'streaming';
  const tools = item.querySelector('.tools');
  state.pendingReply = item;
  let text = replyText.get(item) ?? '';
  let frame = 0;
  const paint = () => {
    frame = 0;
    const follow = nearBottom();
    renderMarkdown(item.querySelector('.body'), text);
    if (follow) scrollDown();
  };
  let ended = false;
  for await (const { event, data } of serverSentEvents(response)) {
    if (event === 'message' && userItem) {
      updateMessage(userItem, data.message);
      userItem.classList.remove('pending');
    } else if (event === 'token') {
      text += data.delta;
      item.dataset.received = String(text.length);
      frame ||= requestAnimationFrame(paint);
    } else if (event === 'tool') {
      tools.append(toolItem(data));
    } else if (event === 'done') {
      cancelAnimationFrame(frame);
      updateMessage(item, data.message);
      showOffline(data.message.content.startsWith(OFFLINE_LABEL));
      if (data.session) showSessionName(session, data.session); // named by its first exchange
      ended = true;
    } else if (event === 'error') {
      cancelAnimationFrame(frame);
      updateMessage(item, { role: 'assistant', content: text, status: 'failed', error: data.detail });
      ended = true;
    } else if (event === 'approval') {
      cancelAnimationFrame(frame);
      paint();
      replyText.set(item, text);
      userItem?.classList.remove('pending');
      showApproval(session, item, data.approval);
      ended = true;
    }
  }
  item.classList.remove('streaming');
  if (!ended) markIncomplete(item, 'The stream ended early');
  if (state.current === session) scrollDown();
  return item;
}

/** The card asking to approve a tool call, at the end of the paused reply's item. */
function showApproval(session, item, approval) {
  item.dataset.status = 'awaiting_approval';
  item.querySelector('.approval')?.remove();
  item.append(approvalItem(approval, (body) => decideApproval(session, item, approval, body)));
  scrollDown();
}

/** After a session opens: the tool call its agent waits to have approved, if any. */
async function showPendingApproval(session) {
  let approval;
  try {
    approval = await auth.json(`chat/sessions/${encodeURIComponent(session.id)}/approval`);
  } catch {
    return; // none pending (404), or offline: nothing to show
  }
  if (state.current !== session) return;
  ui.emptyState.hidden = true;
  const item = replyItem(approval.reply_so_far);
  showApproval(session, item, approval);
}

/**
 * Send the user's decision and stream the rest of the reply into the paused one's item.
 * Returns a message for the card when the decision was refused (it stays), else null.
 */
async function decideApproval(session, item, approval, body) {
  if (state.streaming) return 'A reply is being generated: wait for it, or stop it.';
  hideChatError();
  const controller = new AbortController();
  setStreaming(controller);
  try {
    const response = await auth.fetch(`chat/sessions/${encodeURIComponent(session.id)}/approval/stream`, {
      method: 'POST', body: { id: approval.id, ...body }, signal: controller.signal,
    });
    if (!response.ok) {
      const error = await errorFrom(response);
      if (error.status === 422) return Object.values(error.fieldErrors()).flat().join(' ') || error.message;
      if (error.status !== 404 && error.status !== 410) return describe(error);
      item.querySelector('.approval')?.remove(); // expired or decided elsewhere: nothing left to decide
      markIncomplete(item, error.message);
      return null;
    }
    item.querySelector('.approval')?.remove();
    await streamReply(response, session, null, item);
  } catch (error) {
    if (error.name === 'AbortError') markIncomplete(item);
    else showChatError(describe(error));
  } finally {
    state.pendingReply = null;
    setStreaming(null);
    if (state.current === session) recount(session);
  }
  return null;
}

// ---------------------------------------------------------------- small things

function showChatError(text) {
  ui.chatError.textContent = text;
  ui.chatError.hidden = false;
}

function hideChatError() {
  ui.chatError.hidden = true;
  ui.chatError.textContent = '';
}

function resizeInput() {
  ui.input.style.height = 'auto'; // CSSOM, not a style attribute: allowed by the CSP
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 200)}px`;
}

function openSidebar() {
  ui.chatView.classList.add('sidebar-open');
  ui.backdrop.hidden = false;
  ui.toggleSidebar.setAttribute('aria-expanded', 'true');
}

function closeSidebar() {
  ui.chatView.classList.remove('sidebar-open');
  ui.backdrop.hidden = true;
  ui.toggleSidebar.setAttribute('aria-expanded', 'false');
}

function whenVisible(sentinel, root, load) {
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) load();
  }, { root, rootMargin: '200px' }).observe(sentinel);
}

// ---------------------------------------------------------------- wiring

ui.tabLogin.addEventListener('click', () => setMode('login'));
ui.tabRegister.addEventListener('click', () => setMode('register'));
ui.authForm.addEventListener('submit', submitAuth);
ui.newSession.addEventListener('click', createSession);
ui.logout.addEventListener('click', async () => {
  await auth.logOut();
  sessionStorage.removeItem(OFFLINE_KEY);
  state.current = null;
  history.replaceState(null, '', location.pathname);
  showAuth('You are logged out.');
});
ui.renameButton.addEventListener('click', startRename);
ui.renameCancel.addEventListener('click', cancelRename);
ui.renameForm.addEventListener('submit', submitRename);
ui.renameInput.addEventListener('keydown', (e) => { if (e.key === 'Escape') cancelRename(); });
ui.deleteButton.addEventListener('click', deleteSession);
ui.composer.addEventListener('submit', sendMessage);
ui.stop.addEventListener('click', abortStream);
ui.input.addEventListener('input', resizeInput);
ui.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    sendMessage();
  }
});
ui.toggleSidebar.addEventListener('click', () => (
  ui.chatView.classList.contains('sidebar-open') ? closeSidebar() : openSidebar()));
ui.backdrop.addEventListener('click', closeSidebar);
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && state.streaming && !ui.renameForm.contains(e.target)) abortStream();
});
whenVisible(ui.sessionsSentinel, $('session-scroll'), loadSessions);
whenVisible(ui.historySentinel, ui.messages, loadHistory);

setMode('login');
if (auth.loggedIn) enterChat();
else showAuth();
