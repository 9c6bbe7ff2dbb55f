// The JSON API client: base URL from the page's own location, the key, errors with reasons.

/** An API call that failed: `status` 0 means the server could not be reached. */
export class ApiError extends Error {
  constructor(status, detail, retryAfterS = null) {
    super(status ? `${status}: ${detail}` : detail);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.retryAfterS = retryAfterS;
  }
}

/** The page is served at <base>/ui: the API lives at <base>, whatever the prefix is. */
export function apiBase(pathname = window.location.pathname) {
  return pathname.replace(/\/ui\/?$/, "");
}

export class Api {
  constructor(base = apiBase(), storage = window.sessionStorage) {
    this.base = base;
    this.storage = storage;
    // One key per API base, so two services on one origin do not share it.
    this.storageKey = `otel-monitoring-key:${base || "/"}`;
  }

  get key() {
    return this.storage.getItem(this.storageKey) ?? "";
  }

  set key(value) {
    if (value) this.storage.setItem(this.storageKey, value);
    else this.storage.removeItem(this.storageKey);
  }

  get(path, params = {}) {
    return this.request("GET", path, { params });
  }

  post(path, body) {
    return this.request("POST", path, { body });
  }

  async request(method, path, { params = {}, body } = {}) {
    const url = new URL(this.base + path, window.location.origin);
    for (const [name, value] of Object.entries(params)) {
      if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
    }
    const headers = { Accept: "application/json" };
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store", credentials: "same-origin",
      });
    } catch (err) {
      throw new ApiError(0, `cannot reach the monitoring API (${err.message})`);
    }
    const payload = await readJson(response);
    if (!response.ok) {
      throw new ApiError(
        response.status,
        detailOf(payload) || response.statusText || "request failed",
        retryAfter(response.headers.get("Retry-After")),
      );
    }
    return payload;
  }
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 300) };
  }
}

/** FastAPI errors: {"detail": "text"} or {"detail": [{"msg": ..., "loc": [...]}, ...]}. */
function detailOf(payload) {
  const detail = payload?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (d?.loc ? `${d.loc.join(".")}: ${d.msg}` : String(d?.msg ?? d)))
      .join("; ");
  }
  return detail === undefined ? "" : JSON.stringify(detail);
}

/** Retry-After is delay-seconds or an HTTP date. */
export function retryAfter(header) {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, (date - Date.now()) / 1000);
}
