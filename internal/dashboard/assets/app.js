// The dashboard: state per service kept from one initial load and then
// from the event stream only (no chart polls anything); a view per hash
// route: #/ (every service), #/SERVICE, #/SERVICE/deployments/ID.

import { api, stream, token, setToken, APIError } from './api.js';
import { serviceCharts } from './charts.js';
import {
  h, parseTime, pool, weight, duration, clock, verdictWords, resultLabel, outcomeLabel, eventLabel, strategyWords,
} from './format.js';

const WINDOW = 15 * 60 * 1000;
const MARKED = new Set(['step', 'paused', 'resumed', 'promoted', 'rolled_back', 'aborted', 'decision', 'failed']);

// services: name -> {status, history, points, marks, charts}
const services = new Map();
// Figures the browser test reads: how long after a weight change's event
// time the page showed it.
const stats = { weightDelays: [], events: 0, points: 0 };
window.cutoverDashboard = stats;

const $ = (id) => document.getElementById(id);

// ---- messages and the token ------------------------------------------------

function showError(what, err) {
  let text = what + ': ' + err.message;
  if (err instanceof APIError && err.status === 401) {
    text = what + ' was refused: ' + err.message + '. Enter the API token above.';
    $('token-box').open = true;
  } else if (err instanceof APIError && err.status === 403) {
    text = what + ' was refused (403): ' + err.message;
  }
  $('alert-text').textContent = text;
  $('alert').hidden = false;
  $('alert').dataset.status = err.status || '';
}

function clearError() { $('alert').hidden = true; $('alert-text').textContent = ''; }

function initToken() {
  $('token').value = token();
  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setToken($('token').value.trim());
    $('token-box').open = false;
    clearError();
    restart();
  });
  $('token-clear').addEventListener('click', () => { setToken(''); $('token').value = ''; restart(); });
  $('alert-close').addEventListener('click', clearError);
}

// ---- state --------------------------------------------------------------------

function entry(name) {
  let e = services.get(name);
  if (!e) {
    e = { status: null, history: [], points: [], marks: [], charts: null, refreshing: false, again: false };
    services.set(name, e);
  }
  return e;
}

function marksFrom(history) {
  const out = [];
  for (const d of history) for (const ev of d.events || []) addMark(out, ev);
  return out.sort((a, b) => a.t - b.t);
}

function addMark(list, ev) {
  if (!MARKED.has(ev.type)) return;
  const t = parseTime(ev.time);
  if (isNaN(t)) return;
  let kind = ev.type, label = ev.type === 'step' ? weight(ev.weight) : eventLabel[ev.type];
  if (ev.type === 'decision') {
    // An automatic decision either sends traffic back or lets it through.
    const back = ev.verdict ? ev.verdict.result === 'fail' : /roll/i.test(ev.message || '');
    kind = back ? 'decision' : 'decision-pass';
    label = back ? 'rollback decided' : 'checks passed';
  }
  list.push({ t, kind, label });
}

async function loadAll() {
  const list = await api.services();
  for (const st of list) {
    const e = entry(st.service);
    e.status = st;
  }
  await Promise.all(list.map(async (st) => {
    const e = entry(st.service);
    const [hist, traffic] = await Promise.all([api.history(st.service), api.traffic(st.service).catch(() => ({ points: [] }))]);
    e.history = hist;
    e.marks = marksFrom(hist);
    e.points = traffic.points || [];
  }));
}

// refresh reloads one service's status (and history when asked) after an
// event; calls for the same service coalesce into one in flight.
async function refresh(name, withHistory) {
  const e = entry(name);
  e.wantHistory = e.wantHistory || withHistory;
  if (e.refreshing) { e.again = true; return; }
  e.refreshing = true;
  try {
    do {
      e.again = false;
      const hist = e.wantHistory;
      e.wantHistory = false;
      e.status = await api.status(name);
      if (hist) e.history = await api.history(name);
      update(name);
    } while (e.again);
  } catch (err) {
    showError('Reading ' + name, err);
  } finally {
    e.refreshing = false;
  }
}

function onEvent(ev) {
  stats.events++;
  const e = entry(ev.service);
  addMark(e.marks, ev);
  const st = e.status;
  if (st && ev.type === 'verdict' && ev.verdict) st.analysis = ev.verdict;
  if (st && ev.type === 'step' && st.live) {
    // The event carries the new split: show it now, before the status
    // call confirms it.
    const live = st.live.color, other = live === 'blue' ? 'green' : 'blue';
    st.weights = { [live]: 100 - ev.weight, [other]: ev.weight };
    update(ev.service);
    const t = parseTime(ev.time);
    if (!isNaN(t)) stats.weightDelays.push(Date.now() - t);
  } else if (ev.type === 'verdict') {
    update(ev.service);
  }
  const ended = ['promoted', 'rolled_back', 'aborted', 'failed', 'started', 'decision', 'retired'].includes(ev.type);
  if (ev.type !== 'verdict') refresh(ev.service, ended);
}

function onTraffic(p) {
  stats.points++;
  const e = entry(p.service);
  e.points.push(p);
  const cut = p.t - WINDOW;
  while (e.points.length && e.points[0].t < cut) e.points.shift();
  while (e.marks.length && e.marks[0].t < cut) e.marks.shift();
  updateInstances(p.service);
  drawCharts(p.service);
}

// ---- the stream -----------------------------------------------------------------

let streamAbort = null;

async function follow() {
  const ctl = new AbortController();
  streamAbort = ctl;
  let wait = 500;
  while (!ctl.signal.aborted) {
    $('conn').textContent = 'connecting…';
    $('conn').dataset.state = 'connecting';
    try {
      await loadAll();
      // A reconnection refreshes the view in place, so that a form being
      // filled in is not rebuilt under the user's hands.
      if ($('main').dataset.view === location.hash) {
        for (const n of services.keys()) { update(n); drawCharts(n); }
      } else {
        render();
      }
      await stream(ctl.signal, () => { $('conn').textContent = 'live'; $('conn').dataset.state = 'live'; wait = 500; }, onEvent, onTraffic);
    } catch (err) {
      if (ctl.signal.aborted) return;
      showError('Reading the daemon', err);
      if (err instanceof APIError && err.status === 401) {
        $('conn').textContent = 'token needed';
        $('conn').dataset.state = 'down';
        return; // wait for the token form
      }
    }
    if (ctl.signal.aborted) return;
    $('conn').textContent = 'reconnecting…';
    $('conn').dataset.state = 'down';
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 10000);
  }
}

function restart() {
  if (streamAbort) streamAbort.abort();
  follow();
}

// ---- views ------------------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  return { service: parts[0] || '', deployment: parts[1] === 'deployments' ? parts[2] || '' : '' };
}

function render() {
  const r = route();
  const main = $('main');
  const focus = document.activeElement && document.activeElement.id;
  if (!r.service) {
    main.replaceChildren(h('h1', {}, 'Services'), ...[...services.keys()].sort().map((n) => card(n, true)));
  } else if (!services.has(r.service)) {
    main.replaceChildren(h('p', {}, 'No service named ' + r.service + '.'));
  } else if (r.deployment) {
    main.replaceChildren(deploymentView(r.service, r.deployment));
  } else {
    main.replaceChildren(serviceView(r.service));
    drawCharts(r.service);
  }
  main.dataset.view = location.hash;
  if (focus && $(focus)) $(focus).focus();
  tickTimers();
}

// update redraws what shows one service's state after it changed: its
// card, its buttons and its history, leaving the rest of the page (the
// deploy form the user may be typing in, the focus) alone.
function update(name) {
  const r = route();
  if (r.deployment) {
    if (r.service === name) render();
    return;
  }
  const old = $('svc-' + name);
  if (!old) {
    if (!r.service) render();
    return;
  }
  old.replaceWith(card(name, !r.service));
  if (r.service === name) {
    setActions(name);
    const hist = document.querySelector('.history');
    if (hist) hist.replaceWith(historyTable(name, services.get(name).history));
  }
  tickTimers();
}

function pools(st) {
  const rows = [h('li', { class: 'pool-live' }, h('b', {}, 'live '), h('span', { class: 'pool color-' + (st.live?.color || '') }, pool(st.live)))];
  if (st.candidate) rows.push(h('li', { class: 'pool-candidate' }, h('b', {}, 'candidate '), h('span', { class: 'pool color-' + st.candidate.color }, pool(st.candidate))));
  if (st.previous) {
    const until = parseTime(st.previous.until);
    rows.push(h('li', { class: 'pool-previous' }, h('b', {}, 'previous '), h('span', { class: 'pool color-' + st.previous.color }, pool(st.previous)),
      isNaN(until) ? '' : ' (warm until ' + clock(until) + ')'));
  }
  return h('ul', { class: 'pools' }, rows);
}

function weightBar(st) {
  const b = st.weights?.blue ?? 0, g = st.weights?.green ?? 0;
  const bar = h('div', { class: 'weights', role: 'img', 'aria-label': `traffic: blue ${weight(b)}, green ${weight(g)}`, 'data-blue': b, 'data-green': g });
  for (const [c, w] of [['blue', b], ['green', g]]) {
    const seg = h('span', { class: 'seg seg-' + c }, w >= 12 ? `${c} ${weight(w)}` : '');
    seg.style.width = w + '%';
    bar.append(seg);
  }
  return h('div', { class: 'weight-box' }, bar, h('p', { class: 'weight-text' }, `blue ${weight(b)} · green ${weight(g)}`));
}

function stepLine(st) {
  const d = st.deployment;
  if (!d) return null;
  if (st.phase === 'rolling_back') return h('p', { class: 'step' }, `rolling back: ${pool(st.candidate)} is drained and stopped`);
  if (!d.step || !d.steps) return h('p', { class: 'step' }, `deployment of ${d.version}: ${st.phase}`);
  const until = parseTime(d.step_until);
  let left = '';
  if (st.phase === 'paused') left = 'paused until you resume';
  else if (d.manual_gate) left = 'waiting for promote';
  else if (!isNaN(until)) left = h('span', { class: 'timeleft', 'data-until': until }, '');
  return h('p', { class: 'step' }, `step ${d.step} of ${d.steps}`, left ? ' · ' : '', left);
}

function instancesLine(name) {
  const e = services.get(name);
  const p = e.points[e.points.length - 1];
  if (!p) return h('p', { class: 'instances', 'data-instances': name }, 'instances: no sample yet');
  const part = (c) => `${c} ${p[c].healthy}/${p[c].total} healthy`;
  return h('p', { class: 'instances', 'data-instances': name }, 'instances: ' + part('blue') + ' · ' + part('green'));
}

function updateInstances(name) {
  for (const el of document.querySelectorAll('[data-instances]')) {
    if (el.dataset.instances === name) el.replaceWith(instancesLine(name));
  }
}

function verdictLine(st) {
  const v = st.analysis;
  if (!v) return null;
  return h('p', { class: 'verdict verdict-' + v.result },
    h('b', {}, 'analysis ' + (resultLabel[v.result] || v.result) + ': '), verdictWords(v));
}

// lastLine says how the latest deployment ended, once none is running.
function lastLine(name, st) {
  const d = services.get(name).history[0];
  if (!d || d.outcome === 'running' || (st.deployment && st.phase !== 'idle')) return null;
  return h('p', { class: 'last' }, h('b', {}, 'last deployment: '), `${d.version} `, outcome(d), d.reason ? ' — ' + d.reason : '');
}

function card(name, link) {
  const st = services.get(name).status;
  if (!st) return h('section', { class: 'card' }, name);
  const title = link ? h('a', { href: '#/' + encodeURIComponent(name) }, name) : name;
  return h('section', { class: 'card', id: 'svc-' + name, 'aria-label': 'service ' + name },
    h('h2', {}, title, ' ', h('span', { class: 'phase phase-' + st.phase }, st.down ? 'down' : st.phase)),
    pools(st), weightBar(st), stepLine(st), verdictLine(st), lastLine(name, st), instancesLine(name),
    (st.notices || []).map((n) => h('p', { class: 'notice' }, n)));
}

// ---- actions ------------------------------------------------------------------------

function otherColor(c) { return c === 'blue' ? 'green' : 'blue'; }

// describe says what an action will do, in the words of this service's state.
function describe(action, st, extra) {
  const live = pool(st.live), cand = st.candidate ? pool(st.candidate) : 'the candidate';
  const d = st.deployment;
  switch (action) {
    case 'promote':
      return `${cand} takes all traffic now, skipping the remaining steps and checks; ${live} stays warm as the previous pool.`;
    case 'pause':
      return `Hold the deployment of ${cand} where it is: ${weight(st.weights?.[st.candidate?.color] ?? 0)} of traffic stays on ${cand} until you resume.`;
    case 'resume':
      return `Continue the deployment of ${cand}` + (d && d.steps ? ` from step ${d.step} of ${d.steps}.` : '.');
    case 'abort':
      return `End the deployment of ${cand}: all traffic back to ${live}, and ${cand} is stopped.`;
    case 'rollback':
      if (st.candidate) return `All traffic back to ${live} now, ending the deployment of ${cand}.`;
      if (st.previous) return `All traffic back to ${pool(st.previous)} (kept warm) now, away from ${live}.`;
      return 'Roll back to the previous pool.';
    case 'deploy': {
      const target = st.live ? otherColor(st.live.color) : 'the idle colour';
      const how = strategyWords[extra.strategy] || extra.strategy;
      return `Start ${extra.version} on ${target} (the idle pool) and move traffic with ${how}. ` +
        (st.live ? `${live} keeps serving until ${extra.version} is healthy; a failing analysis sends all traffic back to ${live}.` : '');
    }
  }
  return action;
}

function confirmAction(title, text) {
  const dlg = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.returnValue = '';
    dlg.showModal();
    $('confirm-cancel').focus();
  });
}

async function act(name, action) {
  const st = services.get(name).status;
  const label = action[0].toUpperCase() + action.slice(1);
  if (!(await confirmAction(`${label} ${name}?`, describe(action, st)))) return;
  try {
    const after = await api.action(name, action);
    clearError();
    services.get(name).status = after;
    update(name);
  } catch (err) {
    showError(label + ' ' + name, err);
  }
}

async function deploy(name, form) {
  const st = services.get(name).status;
  const version = form.elements.version.value.trim();
  const strategy = form.elements.strategy.value;
  if (!version) { showError('Deploy ' + name, new Error('give the version to deploy')); return; }
  if (!(await confirmAction(`Deploy ${version} to ${name}?`, describe('deploy', st, { version, strategy })))) return;
  try {
    await api.deploy(name, version, strategy);
    clearError();
    form.elements.version.value = '';
    refresh(name, true);
  } catch (err) {
    showError('Deploy ' + version + ' to ' + name, err);
  }
}

// allowed says which actions the service's state allows.
function allowed(st) {
  const running = !!st.deployment && st.phase !== 'idle';
  return {
    running,
    can: {
      promote: running && ['shifting', 'paused', 'verifying'].includes(st.phase),
      pause: st.phase === 'shifting',
      resume: st.phase === 'paused',
      abort: running && st.phase !== 'rolling_back',
      rollback: (running && st.phase !== 'rolling_back') || (!running && !!st.previous),
    },
  };
}

function setActions(name) {
  const { running, can } = allowed(services.get(name).status);
  for (const [a, ok] of Object.entries(can)) {
    const b = $('act-' + a);
    if (b) b.disabled = !ok;
  }
  const d = $('deploy-submit');
  if (d) d.disabled = running;
}

function actions(name, st) {
  const { running, can } = allowed(st);
  const buttons = Object.keys(can).map((a) => h('button', {
    type: 'button', id: `act-${a}`, class: 'action action-' + a, disabled: !can[a], onclick: () => act(name, a),
  }, a[0].toUpperCase() + a.slice(1)));
  const form = h('form', { class: 'deploy', id: 'deploy-form', onsubmit: (e) => { e.preventDefault(); deploy(name, e.target); } },
    h('label', { for: 'deploy-version' }, 'Version'),
    h('input', { id: 'deploy-version', name: 'version', required: true, autocomplete: 'off', placeholder: 'v2' }),
    h('label', { for: 'deploy-strategy' }, 'Strategy'),
    h('select', { id: 'deploy-strategy', name: 'strategy' },
      Object.entries(strategyWords).map(([v, words]) => h('option', { value: v }, v ? v + ' — ' + words : 'configured steps'))),
    h('button', { type: 'submit', id: 'deploy-submit', class: 'primary', disabled: running }, 'Deploy'));
  return h('section', { class: 'card actions', 'aria-label': 'actions' }, h('h2', {}, 'Actions'),
    h('div', { class: 'buttons' }, buttons), form);
}

// ---- service and deployment views ---------------------------------------------------

function serviceView(name) {
  const e = services.get(name);
  const st = e.status;
  if (!e.charts) e.charts = serviceCharts();
  // Keep what the user typed in the deploy form across re-renders.
  const old = $('deploy-form');
  const typed = old ? { version: old.elements.version.value, strategy: old.elements.strategy.value } : null;
  const view = h('div', { class: 'service-view' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'all services'), ' / ', name),
    card(name, false), actions(name, st),
    h('section', { class: 'card charts', 'aria-label': 'traffic charts' }, h('h2', {}, 'Last 15 minutes'),
      h('div', { class: 'chart-grid' }, e.charts.map((c) => c.el))),
    historyTable(name, e.history));
  if (typed) {
    const f = view.querySelector('#deploy-form');
    f.elements.version.value = typed.version;
    f.elements.strategy.value = typed.strategy;
  }
  return view;
}

function drawCharts(name) {
  const r = route();
  const e = services.get(name);
  if (r.service !== name || r.deployment || !e.charts) return;
  const last = e.points.length ? e.points[e.points.length - 1].t : Date.now();
  const first = e.points.length ? e.points[0].t : last;
  const t0 = Math.min(Math.max(first, last - WINDOW), last - 30000);
  for (const c of e.charts) c.draw(e.points, e.marks, t0, last);
}

function outcome(d) {
  return h('span', { class: 'outcome outcome-' + d.outcome }, outcomeLabel[d.outcome] || d.outcome);
}

function historyTable(name, hist) {
  const rows = hist.map((d) => {
    const start = parseTime(d.started_at), end = parseTime(d.ended_at);
    return h('tr', {},
      h('td', {}, h('a', { href: `#/${encodeURIComponent(name)}/deployments/${encodeURIComponent(d.id)}` }, d.version)),
      h('td', {}, d.from_version || ''),
      h('td', {}, d.strategy || 'configured'),
      h('td', {}, clock(start)),
      h('td', {}, isNaN(end) ? '' : duration(end - start)),
      h('td', {}, outcome(d)),
      h('td', { class: 'reason' }, d.reason || ''));
  });
  return h('section', { class: 'card history', 'aria-label': 'deployment history' }, h('h2', {}, 'Deployments'),
    h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, ['version', 'from', 'strategy', 'started', 'took', 'outcome', 'reason'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows))));
}

function deploymentView(name, id) {
  const e = services.get(name);
  const d = e.history.find((x) => x.id === id);
  const box = h('div', { class: 'deployment-view' },
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'all services'), ' / ', h('a', { href: '#/' + encodeURIComponent(name) }, name), ' / ', id));
  if (!d) {
    box.append(h('p', {}, 'Loading deployment ' + id + '…'));
    api.deployment(name, id).then((dep) => { e.history.push(dep); render(); }, (err) => showError('Reading deployment ' + id, err));
    return box;
  }
  box.append(h('section', { class: 'card', id: 'deployment' },
    h('h2', {}, `${d.version} on ${d.color} `, outcome(d)),
    h('p', {}, `from ${d.from_version || 'nothing'} · strategy ${d.strategy || 'configured'} · started ${clock(parseTime(d.started_at))}`),
    d.reason ? h('p', { class: 'reason', id: 'deployment-reason' }, h('b', {}, 'reason: '), d.reason) : null,
    h('ol', { class: 'timeline' }, (d.events || []).map((ev) => h('li', { class: 'ev ev-' + ev.type },
      h('time', {}, clock(parseTime(ev.time))), ' ',
      h('b', {}, eventLabel[ev.type] || ev.type), ev.type === 'step' ? ' ' + weight(ev.weight) : '', ' ',
      ev.message || '', ev.actor ? h('span', { class: 'muted' }, ' — ' + ev.actor) : '',
      ev.verdict ? h('div', { class: 'figures' }, verdictWords(ev.verdict), ' — ', resultLabel[ev.verdict.result] || ev.verdict.result) : '',
      ev.output ? h('pre', {}, ev.output) : '')))));
  return box;
}

// Countdowns of the current step tick locally; nothing is fetched for them.
function tickTimers() {
  for (const el of document.querySelectorAll('.timeleft')) {
    const left = Number(el.dataset.until) - Date.now();
    el.textContent = left > 0 ? duration(left) + ' left' : 'step ending';
  }
}

initToken();
window.addEventListener('hashchange', render);
setInterval(tickTimers, 1000);
follow();
