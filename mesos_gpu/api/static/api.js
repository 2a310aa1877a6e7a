// The API as the page calls it: relative URLs only (the page may live under a prefix such as DC/OS
// Admin Router's /service/<name>/), the token from sessionStorage, the API's JSON errors.
const TOKEN_KEY = "mesos-gpu-token";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "error";
    this.details = Array.isArray(error.details) ? error.details : [];
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

const listeners = { unauthorized: [] };
export function onUnauthorized(fn) { listeners.unauthorized.push(fn); }

// One request. `path` is relative ("v1/jobs"). Returns {status, data, etag}; data is null for a 304.
// Throws ApiError for an error answer (after telling the listeners of a 401) or a network failure.
export async function request(method, path, { body, etag, contentType = "application/json" } = {}) {
  const headers = { Accept: "application/json" };
  const current = token();
  // Not Authorization: behind DC/OS Admin Router that header is the DC/OS login's (docs/web.md).
  if (current) headers["X-Mesos-GPU-Token"] = current;
  if (body !== undefined) headers["Content-Type"] = contentType;
  if (etag) headers["If-None-Match"] = etag;
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store", credentials: "same-origin", redirect: "manual" });
  } catch (err) {
    throw new ApiError(0, { error: { code: "network", message: `the scheduler cannot be reached (${err.message})` } });
  }
  if (response.type === "opaqueredirect") {
    // A standby answers 307 to the leader, another origin the page cannot read: say so.
    let leader = "";
    try { leader = (await (await fetch("v1/health", { cache: "no-store" })).json()).leader_identifier || ""; } catch { /* unknown */ }
    const where = leader ? `the leader's page, ${location.protocol}//${leader}/` : "the leader's page (v1/health names the leader)";
    throw new ApiError(307, { error: { code: "not_leader", message: `this scheduler is a standby: open ${where}` } });
  }
  if (response.status === 304) return { status: 304, data: null, etag };
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { error: { message: text.slice(0, 200) } }; }
  }
  if (!response.ok) {
    if (response.status === 401) listeners.unauthorized.forEach((fn) => fn());
    throw new ApiError(response.status, data);
  }
  return { status: response.status, data, etag: response.headers.get("ETag") };
}

export const get = (path, options) => request("GET", path, options);

// "v1/jobs/<id>" for an id (ids are DNS-label-like, encoded anyway).
export const jobPath = (id) => `v1/jobs/${encodeURIComponent(id)}`;
