// The control API from the browser: JSON calls and the event stream, with
// the bearer token the user typed (kept in sessionStorage: it lives as long
// as the tab and is never sent anywhere but this origin).

const TOKEN_KEY = 'cutover.token';

export function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// APIError is a refused or failed call, with the API's stable code.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra) {
  const h = { Accept: 'application/json', ...extra };
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }), cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new APIError(0, 'network', 'the daemon cannot be reached (' + e.message + ')');
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new APIError(res.status, e.code || 'http_' + res.status, e.message || res.statusText || 'HTTP ' + res.status);
  }
  return data;
}

const svc = (name) => '/v1/services/' + encodeURIComponent(name);

export const api = {
  services: () => call('GET', '/v1/services'),
  status: (name) => call('GET', svc(name)),
  history: (name, limit = 20) => call('GET', svc(name) + '/deployments?limit=' + limit),
  deployment: (name, id) => call('GET', svc(name) + '/deployments/' + encodeURIComponent(id)),
  traffic: (name) => call('GET', svc(name) + '/traffic'),
  deploy: (name, version, strategy) => call('POST', svc(name) + '/deployments', strategy ? { version, strategy } : { version }),
  action: (name, action) => call('POST', svc(name) + '/' + action),
};

// stream follows GET /v1/events?traffic=1 until signal aborts: deployment
// events go to onEvent, the per-second traffic points to onTraffic. It is
// read with fetch rather than EventSource because EventSource cannot send
// the Authorization header. It resolves when the stream ends and rejects
// with an APIError when the daemon refuses it.
export async function stream(signal, onOpen, onEvent, onTraffic) {
  let res;
  try {
    res = await fetch('/v1/events?traffic=1', { headers: headers({ Accept: 'text/event-stream' }), cache: 'no-store', credentials: 'omit', signal });
  } catch (e) {
    if (signal.aborted) return;
    throw new APIError(0, 'network', 'the event stream cannot be reached (' + e.message + ')');
  }
  if (!res.ok) {
    let msg = 'HTTP ' + res.status, code = 'http_' + res.status;
    try { const e = (await res.json()).error; msg = e.message; code = e.code; } catch { /* not JSON */ }
    throw new APIError(res.status, code, msg);
  }
  onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      let cut;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        dispatch(block, onEvent, onTraffic);
      }
    }
  } catch (e) {
    if (signal.aborted) return;
    throw new APIError(0, 'network', 'the event stream broke off (' + e.message + ')');
  }
}

function dispatch(block, onEvent, onTraffic) {
  let type = 'message', data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue; // heartbeat
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') type = value;
    else if (field === 'data') data += (data ? '\n' : '') + value;
  }
  if (!data) return;
  let obj;
  try { obj = JSON.parse(data); } catch { return; }
  if (type === 'traffic') onTraffic(obj);
  else if (type === 'message') onEvent(obj);
}
