// Words and numbers: how the page says what the API reports.

// h builds an element: h('p', {class: 'x'}, 'text', child). Text is always
// set as text, never parsed as HTML, so nothing from the API can inject markup.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// parseTime reads an RFC 3339 time as Go writes it (nanoseconds included)
// into milliseconds since the epoch; NaN for a zero or missing time.
export function parseTime(s) {
  if (!s || s.startsWith('0001-')) return NaN;
  return Date.parse(s.replace(/(\.\d{3})\d+/, '$1'));
}

export const pool = (p) => (p ? p.color + ' ' + p.version : 'none');

export function pct(fraction, digits = 1) {
  if (fraction === null || fraction === undefined || isNaN(fraction)) return '–';
  return (fraction * 100).toFixed(digits).replace(/\.0+$/, '') + '%';
}

export function weight(w) { return (Math.round(w * 10) / 10) + '%'; }

export function ms(nanos) {
  const v = nanos / 1e6;
  if (v >= 1000) return (v / 1000).toFixed(2) + 's';
  return (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + 'ms';
}

export function duration(msec) {
  if (!(msec >= 0)) return '';
  const s = Math.round(msec / 1000);
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return m + 'm ' + (s % 60) + 's';
  return Math.floor(m / 60) + 'h ' + (m % 60) + 'm';
}

export function clock(t) {
  if (!(t > 0)) return '';
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

// verdictWords is a verdict as a sentence of figures:
// "green error rate 4.9% (n=1204) vs blue 0.1%, p99 12ms vs 8ms".
export function verdictWords(v) {
  if (!v) return '';
  const c = v.candidate || {}, b = v.baseline || {};
  let s = `${c.color} error rate ${pct(c.error_rate)} (n=${c.requests || 0}) vs ${b.color} ${pct(b.error_rate)}`;
  if (c.p99_ns || b.p99_ns) s += `, p99 ${ms(c.p99_ns || 0)} vs ${ms(b.p99_ns || 0)}`;
  return s;
}

export const resultLabel = { pass: 'passing', fail: 'failing', inconclusive: 'not decided yet' };

export const outcomeLabel = {
  running: 'running', promoted: 'promoted', rolled_back: 'rolled back', aborted: 'aborted', failed: 'failed',
};

export const eventLabel = {
  started: 'started', phase: 'phase', step: 'step', hook: 'hook', verdict: 'verdict', decision: 'decision',
  promoted: 'promoted', rolled_back: 'rolled back', aborted: 'aborted', failed: 'failed', retired: 'retired',
  paused: 'paused', resumed: 'resumed', draining: 'draining', adopted: 'adopted', notice: 'notice',
};

export const strategyWords = {
  '': 'the configured steps',
  'all-at-once': 'all at once (100% as soon as it is healthy)',
  'canary10-5m': 'a canary: 10% for 5 minutes, then 100%',
  'linear10-1m': 'linear steps: 10%, 20% … 100%, a minute each',
};
