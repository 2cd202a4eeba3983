// Line charts drawn as plain SVG: one per figure, a line per colour (blue
// solid, green dashed, both named in the legend, so colour is not the only
// signal), vertical marks for weight changes and decisions.

const NS = 'http://www.w3.org/2000/svg';
const W = 400, H = 170, L = 44, R = 6, T = 26, B = 20;

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export class Chart {
  // value(point, colour) returns the figure of a traffic point or null;
  // label formats an axis value.
  constructor(key, title, value, label) {
    this.key = key;
    this.value = value;
    this.label = label;
    this.svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart', 'data-chart': key, 'aria-label': title });
    this.el = document.createElement('figure');
    this.el.className = 'chart-box';
    const cap = document.createElement('figcaption');
    const name = document.createElement('span');
    name.textContent = title;
    cap.append(name);
    for (const c of ['blue', 'green']) {
      const key = document.createElement('span');
      key.className = 'key key-' + c;
      key.textContent = c + (c === 'blue' ? ' (solid)' : ' (dashed)');
      cap.append(key);
    }
    this.el.append(cap, this.svg);
  }

  // draw redraws the chart for points (oldest first) and marks between
  // t0 and t1 (milliseconds).
  draw(points, marks, t0, t1) {
    const svg = this.svg;
    svg.replaceChildren();
    const x = (t) => L + ((t - t0) / Math.max(t1 - t0, 1)) * (W - L - R);
    let top = 0;
    for (const p of points) for (const c of ['blue', 'green']) {
      const v = this.value(p, c);
      if (v !== null && v > top) top = v;
    }
    top = niceCeil(top);
    const y = (v) => T + (1 - v / top) * (H - T - B);
    svg.append(s('line', { x1: L, y1: y(0), x2: W - R, y2: y(0), class: 'axis' }));
    svg.append(s('line', { x1: L, y1: y(top), x2: W - R, y2: y(top), class: 'grid' }));
    svg.append(s('text', { x: L - 4, y: y(0) + 4, class: 'tick', 'text-anchor': 'end' }, this.label(0)));
    svg.append(s('text', { x: L - 4, y: y(top) + 4, class: 'tick', 'text-anchor': 'end' }, this.label(top)));
    svg.append(s('text', { x: L, y: H - 5, class: 'tick' }, clockOf(t0)));
    svg.append(s('text', { x: W - R, y: H - 5, class: 'tick', 'text-anchor': 'end' }, clockOf(t1)));
    // Marks: every one is a line; a label that would overlap the one
    // before it moves to a second row, and a third is dropped (its line
    // and the history table still say what happened).
    const lastLabel = [-Infinity, -Infinity];
    for (const m of marks) {
      if (m.t < t0 || m.t > t1) continue;
      const mx = x(m.t);
      svg.append(s('line', { x1: mx, y1: T - 2, x2: mx, y2: H - B, class: 'mark mark-' + m.kind }));
      const width = 6 * m.label.length + 4;
      const row = mx - lastLabel[0] > width ? 0 : mx - lastLabel[1] > width ? 1 : -1;
      if (row < 0) continue;
      lastLabel[row] = mx;
      svg.append(s('text', { x: Math.min(mx + 2, W - width), y: T - 16 + row * 10, class: 'mark-label' }, m.label));
    }
    const counts = {};
    for (const c of ['blue', 'green']) {
      let d = '', pen = false, n = 0;
      for (const p of points) {
        const v = this.value(p, c);
        if (v === null || p.t < t0) { pen = false; continue; }
        d += (pen ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(v).toFixed(1);
        pen = true;
        n++;
      }
      counts[c] = n;
      if (d) svg.append(s('path', { d, class: 'line line-' + c }));
    }
    svg.setAttribute('data-blue-points', counts.blue);
    svg.setAttribute('data-green-points', counts.green);
  }
}

function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function clockOf(t) {
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

// The three charts of a service.
export function serviceCharts() {
  const num = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1).replace(/\.0$/, '') : String(Math.round(v * 100) / 100));
  return [
    new Chart('rps', 'Requests per second', (p, c) => p[c].requests, num),
    new Chart('errors', 'Error rate', (p, c) => (p[c].error_rate === null ? null : p[c].error_rate * 100), (v) => num(v) + '%'),
    new Chart('p99', 'p99 latency', (p, c) => p[c].p99_ms, (v) => num(v) + 'ms'),
  ];
}
