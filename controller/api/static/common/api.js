// The one way the pages talk to the cabinet API: bearer token, JSON bodies, and every refusal as a Problem
// carrying the problem+json fields (code, detail, title, context), so a screen can say which rule refused and why.

const ENDED = new Set(["auth.session_ended", "auth.token_invalid", "auth.token_expired"]);

export class Problem extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || `http.${status}`;
    this.title = body.title || "";
    this.detail = body.detail || body.title || `the cabinet answered HTTP ${status}`;
    this.context = body.context || {};
    this.data = body.data || null;
    this.errors = body.errors || [];
  }
}

export class Api {
  /** ``storageKey``: where the token survives a page reload (this tab only). */
  constructor(storageKey) {
    this.storageKey = storageKey;
    this.token = sessionStorage.getItem(storageKey);
    this.onSessionEnded = null; // (problem) => void
    this.onActivity = null; // () => void: a call that counts as activity at the cabinet was answered
  }

  setToken(token) {
    this.token = token;
    if (token) sessionStorage.setItem(this.storageKey, token);
    else sessionStorage.removeItem(this.storageKey);
  }

  get(path) {
    return this.request("GET", path);
  }

  post(path, body) {
    return this.request("POST", path, body);
  }

  put(path, body) {
    return this.request("PUT", path, body);
  }

  del(path) {
    return this.request("DELETE", path);
  }

  /** Resolves with the answer's ``data``; rejects with a Problem. ``activity: false``: a refresh nobody asked
   *  for, which must not keep a session alive; the server is told (X-ADC-Passive) and onActivity is not called. */
  async request(method, path, body, { activity = true } = {}) {
    const headers = { Accept: "application/json, application/problem+json" };
    if (!activity) headers["X-ADC-Passive"] = "1";
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let answer;
    try {
      answer = await fetch(path, init);
    } catch (error) {
      throw new Problem(0, { code: "network", detail: `the cabinet did not answer (${error.message})` });
    }
    const text = await answer.text();
    let parsed = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { detail: text.slice(0, 200) };
    }
    if (!answer.ok) {
      const problem = new Problem(answer.status, parsed);
      if (answer.status === 401 && ENDED.has(problem.code) && this.token) {
        this.setToken(null);
        this.onSessionEnded?.(problem);
      }
      throw problem;
    }
    if (activity && this.token) this.onActivity?.();
    return parsed.data;
  }
}
