// The REST API client: every call goes to api/v1/... relative to the page,
// with the API token (if one is saved) as Authorization: Bearer. Error
// answers (RFC 9457 problem+json) become an APIError carrying the problem.

const TOKEN_KEY = 'lwm2md.token';

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(t) {
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

export function authHeaders() {
  const t = getToken();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

// APIError is a failed call: the HTTP status and the problem document
// (title, detail, and whatever members the server adds).
export class APIError extends Error {
  constructor(status, problem, method, url) {
    const p = problem && typeof problem === 'object' ? problem : { detail: String(problem || '') };
    const title = p.title || `HTTP ${status}`;
    super(p.detail ? `${title}: ${p.detail}` : title);
    this.name = 'APIError';
    this.status = status;
    this.problem = p;
    this.method = method;
    this.url = url;
  }

  // hint is advice for the states an operator can fix from the page.
  get hint() {
    if (this.status === 401) return 'Set an API token (button at the top right).';
    if (this.status === 403) return 'The API token lacks the role for this.';
    return '';
  }
}

export function apiURL(path, query) {
  const u = new URL(`api/v1/${path}`, document.baseURI);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, v);
  }
  return u;
}

// call sends one request. body: undefined, a string (sent as is with
// contentType) or a value (sent as JSON). Returns {status, data, location}.
export async function call(method, path, { query, body, contentType, signal } = {}) {
  const url = apiURL(path, query);
  const headers = { Accept: 'application/json, application/problem+json', ...authHeaders() };
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string') {
      payload = body;
      headers['Content-Type'] = contentType || 'application/json';
    } else {
      payload = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
  }
  let res;
  try {
    res = await fetch(url, { method, headers, body: payload, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, { title: 'Network error', detail: `${method} ${url.pathname}: ${e.message}` }, method, url);
  }
  const text = await res.text();
  let data = text;
  if (text && /json/.test(res.headers.get('Content-Type') || '')) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!res.ok) throw new APIError(res.status, data || res.statusText, method, url);
  return { status: res.status, data, location: res.headers.get('Location') };
}

const enc = encodeURIComponent;

// nodeURL is clients/{ep}/{o}/{i}/{r}/{ri} for an LwM2M path "/o/i/r".
export function nodeURL(ep, path) {
  return `clients/${enc(ep)}${path === '/' ? '' : path}`;
}

// listClients returns {clients, next} for the list filters.
export async function listClients(query, signal) {
  const { data } = await call('GET', 'clients', { query, signal });
  if (Array.isArray(data)) return { clients: data, next: '' };
  return { clients: data.clients || data.items || [], next: data.next || data.cursor || '', total: data.total };
}

export async function getClient(ep, signal) {
  return (await call('GET', `clients/${enc(ep)}`, { signal })).data;
}

// Object definitions are the same for every device: fetched once per
// (id, version).
const models = new Map();

export function getObject(id, version) {
  const key = `${id}@${version || ''}`;
  if (!models.has(key)) {
    const p = call('GET', `objects/${id}`, { query: { version } }).then((r) => r.data);
    p.catch(() => models.delete(key));
    models.set(key, p);
  }
  return models.get(key);
}

export const read = (ep, path, query) => call('GET', nodeURL(ep, path), { query });
export const discover = (ep, path) => call('GET', `${nodeURL(ep, path)}/discover`);
export const write = (ep, path, json, replace = true) =>
  call(replace ? 'PUT' : 'PATCH', nodeURL(ep, path), { body: json });
// Execute's body is its arguments (LwM2M Core 1.1 §5.4.5: 0='v',1), as text.
export const execute = (ep, path, args) =>
  call('POST', nodeURL(ep, path), { body: args || '', contentType: 'text/plain; charset=utf-8' });
export const observe = (ep, path) => call('POST', `${nodeURL(ep, path)}/observe`);
export const cancelObserve = (ep, path) => call('DELETE', `${nodeURL(ep, path)}/observe`);
export const remove = (ep, path) => call('DELETE', nodeURL(ep, path));
// Create posts the new instance, with its ID, to the object.
export const create = (ep, objectPath, json) => call('POST', nodeURL(ep, objectPath), { body: json });

// poll fetches a queued request's Location (relative to the API or absolute).
export async function poll(location, signal) {
  const u = new URL(location, document.baseURI);
  const res = await fetch(u, { headers: { Accept: 'application/json', ...authHeaders() }, signal });
  const text = await res.text();
  let data = text;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  if (!res.ok && res.status !== 202) throw new APIError(res.status, data, 'GET', u);
  return { status: res.status, data };
}
