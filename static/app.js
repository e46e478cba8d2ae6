// app.js: the scenario page. It joins the lab's websocket, draws the snapshot,
// then applies each frame: marks on the diagram, lines in the log, exact
// counters, the ledger and the chart.

import { Connection } from './connection.js';
import { Diagram } from './diagram.js';
import { Controls } from './controls.js';
import { Charts } from './chart.js';
import { EventLog } from './log.js';
import { Trace } from './trace.js';
import { nodeActions } from './nodeactions.js';
import { Walk } from './walk.js';
import { presenter } from './presenter.js';

const app = document.getElementById('app');
const base = `/labs/${encodeURIComponent(app.dataset.lab)}/${encodeURIComponent(app.dataset.scenario)}`;
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';

const trace = new Trace(document.getElementById('trace'), base);
const pick = (id) => trace.show(id);
const diagram = new Diagram(document.getElementById('diagram'), { onPick: pick, present: document.body.classList.contains('presenter') });
const log = new EventLog(document.getElementById('log'), document.getElementById('log-filter'), { onPick: pick });
const charts = new Charts(document.getElementById('chart'));
const conn = new Connection(`${scheme}://${location.host}${base}/ws`, {
  onSnapshot: snapshot,
  onFrame: frame,
  onKnobs: (m) => controls.announced(m),
  onStatus: connStatus,
});
const controls = new Controls(document.body, conn);
presenter(app, controls);
// A walkthrough's panel, when the lab runs one on this pattern.
const walkBox = document.querySelector('#walk[data-walk]');
const walk = walkBox && walkBox.querySelector('#walk-step')
  ? new Walk(walkBox, app.dataset.lab, document.getElementById('diagram'), (text, kind) => controls.show(text, kind), 'watching' in app.dataset)
  : null;
// The first screen is the window less the header, however many lines the
// header wraps to: the stylesheet sizes the diagram from --top-h.
const header = document.querySelector('header.top');
new ResizeObserver(() => document.documentElement.style.setProperty('--top-h', `${header.offsetHeight}px`)).observe(header);
// Someone else's sandbox: this page watches it; the server refuses its changes.
if ('watching' in app.dataset) {
  for (const el of document.querySelectorAll('.switches button, .knobs input, .knobs select, .knobs button, #restart')) el.disabled = true;
}

// A link from the start page lit up the controls of one lesson: the first
// to press comes into view, in the knobs panel's own scroll too.
const shown = document.querySelector('.shown[data-step="1"]');
if (shown) {
  const panel = shown.closest('.knobs');
  if (panel) panel.scrollTop += shown.getBoundingClientRect().top - panel.getBoundingClientRect().top - panel.clientHeight / 3;
  shown.scrollIntoView({ block: 'nearest' });
}

// seenUpTo is the newest event the snapshot's log already holds: the frame
// after a snapshot may repeat a few of them.
let seenUpTo = 0;

function snapshot(s) {
  seenUpTo = Math.max(0, ...(s.recent || []).map((e) => e.seq));
  diagram.setView(s.view);
  nodeActions(document.getElementById('diagram'));
  if (walk) walk.highlight();
  controls.update(s.knobs);
  charts.reset(s.history);
  log.reset(s.recent);
  stats(s.stats);
  brokers(s.brokers);
  drawing(s.drawing);
  failed(s.failed);
}

function frame(f) {
  // A frame with no events list still carries stats: never let it throw.
  let events = Array.isArray(f.events) ? f.events : [];
  if (seenUpTo) {
    events = events.filter((e) => e.seq > seenUpTo);
    seenUpTo = 0;
  }
  if (f.stats && f.stats.view) {
    diagram.setView(f.stats.view);
    nodeActions(document.getElementById('diagram'));
    if (walk) walk.highlight();
  }
  if (events.length) {
    diagram.animate(events);
    log.add(events);
    for (const e of events) {
      if (e.kind === 'state' && e.detail && e.detail.knob) controls.knobChanged(e.detail.knob, e.detail.value);
      if (e.kind === 'rebalance') callout(e);
    }
  }
  if (f.stats) {
    stats(f.stats);
    brokers(f.stats.brokers);
    drawing(f.stats.drawing);
    failed(f.stats.failed);
    // A restarted scenario starts from its own defaults.
    if (f.stats.knobs) controls.update(f.stats.knobs);
  }
}

// failed shows why the scenario stopped, with the control that restarts it.
// The rest of the lab keeps running meanwhile.
function failed(why) {
  const box = document.getElementById('failed');
  box.hidden = !why;
  // What the diagram shows is how the scenario was when it stopped.
  app.classList.toggle('stopped', Boolean(why));
  if (why) document.getElementById('failed-text').textContent = why;
}

document.getElementById('restart').addEventListener('click', async (ev) => {
  const button = ev.currentTarget;
  button.disabled = true;
  try {
    const resp = await fetch(`${base}/restart`, { method: 'POST' });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      controls.show(body.error || `the restart was refused (${resp.status})`, 'error');
    }
  } catch (err) {
    controls.show(`could not reach flowlab to restart: ${err.message}`, 'error');
  } finally {
    button.disabled = false;
  }
});

// The reset answers once the scenario runs again; the snapshot that
// follows redraws the page.
document.getElementById('reset').addEventListener('click', async (ev) => {
  const button = ev.currentTarget;
  button.disabled = true;
  try {
    const resp = await fetch(`${base}/reset`, { method: 'POST' });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      controls.show(body.error || `the reset was refused (${resp.status})`, 'error');
    }
  } catch (err) {
    controls.show(`could not reach flowlab to start over: ${err.message}`, 'error');
  } finally {
    button.disabled = false;
  }
});

// drawing says so when the lab is too busy to draw every message: the
// server then sends the hops of one message in k, each message whole.
function drawing(k) {
  const note = document.getElementById('drawing');
  const busy = k > 1;
  note.hidden = !busy;
  if (busy) note.textContent = `Busy: drawing 1 in ${k} messages, each one whole. The counters and the ledger count every message.`;
}

// callout keeps the last rebalance in view beside the diagram: why, the
// assignment before and after, and how long the group took.
function callout(e) {
  const box = document.getElementById('callout');
  const d = e.detail || {};
  const took = d.latencyMs ? ` — took ${(d.latencyMs / 1000).toFixed(1)} s` : '';
  box.textContent = `Rebalance${d.outcome ? ': ' + d.outcome : ''}${took}. ${d.payload || ''}`;
  box.hidden = false;
}

function stats(s) {
  if (!s) return;
  diagram.setStates(s.nodes);
  ledger(s.ledger);
  counters(s.counters);
  charts.add(s.series);
  // A pattern's own panel (the Compare tab's scorecard) draws from them too.
  app.dispatchEvent(new CustomEvent('flowlab:stats', { detail: s }));
}

let lastLedger = '';

// ledger shows total = parts, and says so plainly if it ever does not add up.
function ledger(l) {
  const box = document.getElementById('ledger');
  if (!l || !l.total) return;
  const sum = (l.parts || []).reduce((a, p) => a + p.value, 0);
  const parts = (l.parts || []).map((p) => `<span class="term" data-name="${p.name}"><b>${p.value}</b> ${p.label}</span>`);
  let html = `<span class="term total"><b>${l.total.value}</b> ${l.total.label}</span> = ${parts.join(' + ')}`;
  if (l.duplicates) html += ` <span class="term dup">(duplicates apart: <b>${l.duplicates.value}</b>)</span>`;
  if (sum !== l.total.value) html += ' <span class="unbalanced">does not add up!</span>';
  // Unchanged, it stays: a definition opened on one of its words stays put.
  if (html === lastLedger) return;
  lastLedger = html;
  box.innerHTML = html;
}

function counters(list) {
  const dl = document.getElementById('counters');
  if (!list) return;
  if (dl.childElementCount !== list.length * 2) {
    dl.replaceChildren();
    for (const c of list) {
      const dt = document.createElement('dt');
      dt.textContent = c.label;
      const dd = document.createElement('dd');
      dd.dataset.counter = c.name;
      dl.append(dt, dd);
    }
  }
  for (const c of list) {
    const dd = dl.querySelector(`dd[data-counter="${CSS.escape(c.name)}"]`);
    if (dd && dd.textContent !== String(c.value)) dd.textContent = c.value;
  }
}

// brokers updates the header pills, and says plainly how to get the broker
// this pattern needs when it does not answer.
function brokers(list) {
  const note = document.getElementById('broker-note');
  let missing = '', starting = false;
  for (const b of list || []) {
    if (b.name === app.dataset.broker && !b.ok) {
      missing = `${b.name} at ${b.where} is ${b.status}`;
      starting = Boolean(b.starting);
    }
    const pill = document.querySelector(`[data-broker="${CSS.escape(b.name)}"]`);
    if (!pill) continue;
    pill.className = `pill ${b.ok ? 'ok' : b.starting ? '' : 'bad'}`;
    pill.title = `${b.where}: ${b.status}`;
    pill.lastChild.textContent = `${b.name} ${b.ok ? 'up' : b.starting ? 'starting…' : 'not answering'}`;
  }
  if (list) {
    note.hidden = missing === '';
    note.classList.toggle('starting', starting);
    note.textContent = missing;
  }
}

function connStatus(state, text) {
  const pill = document.getElementById('conn');
  pill.className = `pill ${state === 'live' ? 'ok' : state === 'down' ? 'bad' : ''}`;
  pill.lastChild.textContent = text;
}
