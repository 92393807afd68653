// Talking to Parley's API: tokens, silent refresh, error bodies (see API.md).
//
// Where the tokens live: sessionStorage, under one key. It survives a reload of this tab
// (a reload keeps you logged in and on your chat) but is not shared with other tabs and
// is gone when the tab closes; tokens never go into a URL, a cookie or a log. Like memory,
// it is readable by script on this origin, which is why the page runs under a strict CSP
// (no inline or foreign script) with Trusted Types and sanitised Markdown. It is also
// the one source of truth: every request reads it, so there is no second copy to drift.

const STORAGE_KEY = 'parley.auth';
const API = 'api/v1/';
// Refresh this long before the access token expires (or a quarter of its lifetime, if shorter).
const REFRESH_LEAD_MS = 60_000;

/** An API answer other than 2xx: its status, body and (for 429 and 503) Retry-After seconds. */
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super((body && typeof body.detail === 'string' && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.retryAfter = retryAfter;
  }

  /** The 422 body's problems as {field: [messages]}; `field` is the last part of the dotted name. */
  fieldErrors() {
    const byField = {};
    for (const problem of this.body.errors || []) {
      const field = String(problem.field || 'body').split('.').pop();
      (byField[field] ||= []).push(problem.message);
    }
    return byField;
  }
}

/** The URL of an API path, relative to the page (so a proxy's path prefix is kept). */
export function apiUrl(path) {
  return new URL(API + path, document.baseURI).toString();
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null; // e.g. a proxy's HTML error page
  }
  const header = response.headers.get('Retry-After');
  const retryAfter = header !== null && /^\d+$/.test(header) ? Number(header) : null;
  return new ApiError(response.status, body, retryAfter);
}

/** Throws an ApiError unless the answer is 2xx; returns the JSON body (null for 204). */
export async function parsed(response) {
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

function post(path, body) {
  return fetch(apiUrl(path), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify(body),
  });
}

/**
 * The login of this tab: its tokens, refreshed before they expire and on a 401.
 * `onEnded` is called when the login can no longer be refreshed (logged out elsewhere,
 * refresh token expired or revoked): the page then shows the login form.
 */
export class Auth {
  constructor(onEnded) {
    this.onEnded = onEnded;
    this.refreshing = null; // the one refresh in flight: a refresh token works once
    this.timer = null;
  }

  get tokens() {
    try {
      return JSON.parse(sessionStorage.getItem(STORAGE_KEY));
    } catch {
      return null;
    }
  }

  get loggedIn() {
    return this.tokens !== null;
  }

  /** Keep a TokenPair (as /login and /refresh answer it) and plan its silent refresh. */
  keep(pair) {
    const now = Date.now();
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify({
      access: pair.access_token,
      refresh: pair.refresh_token,
      lifetimeMs: pair.expires_in * 1000,
      accessExpiresAt: now + pair.expires_in * 1000,
      refreshExpiresAt: now + pair.refresh_expires_in * 1000,
    }));
    this.plan();
  }

  forget() {
    clearTimeout(this.timer);
    sessionStorage.removeItem(STORAGE_KEY);
  }

  async logIn(email, password) {
    this.keep(await parsed(await post('auth/login', { email, password })));
  }

  /** Revoke this login on the server (best effort), then forget it here. */
  async logOut() {
    if (!this.tokens) return;
    try {
      const access = await this.accessToken(); // logging out needs a live access token
      await fetch(apiUrl('auth/logout'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${access}` },
        body: JSON.stringify({ refresh_token: this.tokens.refresh }),
      });
    } catch {
      // Offline, or the login had ended: forgotten here anyway, the tokens expire on their own.
    } finally {
      this.forget();
    }
  }

  /** Plan the silent refresh: shortly before the stored access token expires. */
  plan() {
    clearTimeout(this.timer);
    const tokens = this.tokens;
    if (!tokens) return;
    const lead = Math.min(REFRESH_LEAD_MS, tokens.lifetimeMs / 4);
    const due = tokens.accessExpiresAt - lead;
    this.timer = setTimeout(() => {
      // Re-read: the tokens may have changed since this was planned.
      const now = this.tokens;
      if (now && now.accessExpiresAt - lead > Date.now()) this.plan();
      else this.refresh().catch(() => {});
    }, Math.max(0, due - Date.now()));
  }

  /** Rotate the tokens, once at a time (two rotations of one refresh token revoke the login). */
  refresh() {
    this.refreshing ||= this.rotate().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  async rotate() {
    const tokens = this.tokens;
    if (!tokens) throw new ApiError(401, { detail: 'Not authenticated' }, null);
    const response = await post('auth/refresh', { refresh_token: tokens.refresh });
    if (response.status === 401) {
      this.forget();
      this.onEnded('Your login has ended: please log in again.');
    }
    this.keep(await parsed(response)); // throws on any other failure, keeping the tokens
  }

  /** An access token that is not about to expire (refreshing first if it is). */
  async accessToken() {
    const tokens = this.tokens;
    if (!tokens) throw new ApiError(401, { detail: 'Not authenticated' }, null);
    // About to expire (within 5 s, or a quarter of its lifetime if shorter): refresh first.
    if (tokens.accessExpiresAt - Math.min(5_000, tokens.lifetimeMs / 4) <= Date.now()) {
      await this.refresh();
      return this.tokens.access;
    }
    return tokens.access;
  }

  /**
   * fetch() an API path with the access token. On a 401 the tokens are refreshed (unless
   * another request already did) and the request is sent once more. Returns the Response.
   */
  async fetch(path, { method = 'GET', body, signal } = {}) {
    const send = (token) => fetch(apiUrl(path), {
      method,
      signal,
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: 'application/json, text/event-stream',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const token = await this.accessToken();
    const response = await send(token);
    if (response.status !== 401) return response;
    if (this.tokens && this.tokens.access === token) await this.refresh();
    return send(await this.accessToken());
  }

  /** fetch() and parse: the JSON body, or an ApiError thrown. */
  async json(path, options) {
    return parsed(await this.fetch(path, options));
  }
}

/** POST /auth/register: the new User, or an ApiError. */
export async function register(email, password) {
  return parsed(await post('auth/register', { email, password }));
}
