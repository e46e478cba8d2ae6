// compare.js: the Compare tab's scorecard and swimlanes. Each column's
// order-service node carries its row of the scorecard as facts; this draws
// them under the diagram, each under its column, and once a second adds the column's accepted,
// failed and fulfilled orders to its swimlane, the outage shaded, on one
// clock and one scale for all three.

const COLUMNS = [
  { id: 'http', title: 'HTTP calls', inventory: 'http-inventory' },
  { id: 'rabbitmq', title: 'RabbitMQ fanout', inventory: 'rabbitmq-inventory' },
  { id: 'kafka', title: 'Kafka topic', inventory: 'kafka-inventory' },
];
const ROWS = [
  ['accepted', 'accepted', (f) => f.accepted],
  ['failed', 'failed', (f) => f.failed],
  ['p99-ms', 'p99 ms', (f) => Math.round(f['p99-ms'])],
  ['fulfilled', 'fulfilled', (f) => f.fulfilled],
  ['backlog', 'backlog', (f) => f.backlog],
  ['lost', 'lost', (f) => f.lost],
  ['duplicates', 'duplicates', (f) => f.duplicates],
  ['catch-up-ms', 'catch-up', (f) => (f['catching-up'] ? '…' : f['catch-up-ms'] ? `${(f['catch-up-ms'] / 1000).toFixed(1)} s` : '—')],
];
const SECONDS = 90; // the swimlanes' window
const MIN_SPAN = 20; // seconds the lanes span at least, so a young lane is not squeezed into a corner

const board = document.getElementById('compare-board');
const app = document.getElementById('app');
const lanes = new Map(); // column id → { cells, canvas, points }
let latest = null;

function factsOf(ns) {
  const f = {};
  for (const x of (ns && ns.facts) || []) f[x.name] = x.value;
  return f;
}

function build() {
  for (const c of COLUMNS) {
    const col = document.createElement('section');
    col.className = 'compare-col';
    col.dataset.column = c.id;
    col.setAttribute('aria-label', c.title);
    const h = document.createElement('h2');
    h.textContent = c.title;
    const dl = document.createElement('dl');
    dl.className = 'score';
    const cells = {};
    for (const [name, label] of ROWS) {
      const cell = document.createElement('div');
      const dd = document.createElement('dd');
      dd.setAttribute('data-testid', `score-${c.id}-${name}`);
      dd.textContent = '—';
      const dt = document.createElement('dt');
      dt.textContent = label;
      cells[name] = dd;
      cell.append(dd, dt);
      dl.append(cell);
    }
    const canvas = document.createElement('canvas');
    canvas.className = 'lane';
    canvas.setAttribute('data-testid', `lane-${c.id}`);
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `${c.title}: accepted, failed and fulfilled orders a second; inventory's outage shaded`);
    col.append(h, dl, canvas);
    board.append(col);
    lanes.set(c.id, { cells, canvas, points: [] });
  }
  // The lanes' key stands beside the switch that shades them, in a row
  // the switch leaves empty: the first screen has no height to spare.
  const key = document.createElement('p');
  key.className = 'lane-key';
  key.innerHTML = '<span class="k-acc">accepted</span> <span class="k-ful">fulfilled</span> <span class="k-fail">failed</span> <span class="k-out">inventory down</span><br>orders a second, one clock and one scale for all three';
  (document.querySelector('.switches') || board).append(key);
}

function draw(st) {
  latest = st;
  for (const c of COLUMNS) {
    const f = factsOf(st.nodes[c.id]);
    const lane = lanes.get(c.id);
    for (const [name, , fmt] of ROWS) {
      if (!(name in f)) continue;
      const text = String(fmt(f));
      const dd = lane.cells[name];
      if (dd.textContent !== text) dd.textContent = text;
      dd.classList.toggle('bad', (name === 'failed' || name === 'lost' || name === 'duplicates') && f[name] > 0);
      dd.classList.toggle('warn', name === 'backlog' && f[name] > 0);
    }
    lane.cells.accepted.closest('.compare-col').dataset.state = (st.nodes[c.id] || {}).state || '';
  }
}

// sample adds this second's point to every lane, all at the same moment.
function sample() {
  if (!latest) return;
  const now = Date.now();
  let top = 1;
  for (const c of COLUMNS) {
    const f = factsOf(latest.nodes[c.id]);
    const inv = factsOf(latest.nodes[c.inventory]);
    const lane = lanes.get(c.id);
    lane.points.push({ t: now, acc: f['accepted-per-s'] || 0, ful: f['fulfilled-per-s'] || 0, fail: f['failed-per-s'] || 0, down: inv.up === false });
    while (lane.points.length && now - lane.points[0].t > SECONDS * 1000) lane.points.shift();
    for (const p of lane.points) top = Math.max(top, p.acc, p.ful, p.fail);
  }
  for (const c of COLUMNS) plot(lanes.get(c.id), now, top);
}

function plot(lane, now, top) {
  const cv = lane.canvas;
  const w = cv.clientWidth, h = cv.clientHeight;
  const dpr = window.devicePixelRatio || 1;
  if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
    cv.width = Math.round(w * dpr);
    cv.height = Math.round(h * dpr);
  }
  const g = cv.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const first = lane.points.length ? lane.points[0].t : now;
  const span = Math.max(MIN_SPAN * 1000, now - first);
  const x = (t) => ((t - (now - span)) / span) * w;
  const y = (v) => h - 3 - (v / top) * (h - 8);
  const step = (1000 / span) * w;
  // Each run of seconds inventory was down is shaded as one band, from the
  // point before its first.
  g.fillStyle = 'rgba(196, 40, 28, 0.18)';
  let from = null;
  lane.points.forEach((p, i) => {
    if (p.down && from === null) from = i ? x(lane.points[i - 1].t) : x(p.t) - step;
    const last = i === lane.points.length - 1;
    if (from !== null && (!p.down || last)) {
      g.fillRect(from, 0, x(p.down ? p.t : lane.points[i - 1].t) - from, h);
      from = null;
    }
  });
  const line = (key, color, width) => {
    g.strokeStyle = color;
    g.lineWidth = width;
    g.beginPath();
    lane.points.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p[key])) : g.moveTo(x(p.t), y(p[key]))));
    g.stroke();
  };
  line('fail', '#c4281c', 3);
  line('acc', '#1f5fbf', 3);
  line('ful', '#1a7f37', 3);
  g.strokeStyle = '#9aa0a6';
  g.lineWidth = 1;
  g.strokeRect(0.5, 0.5, w - 1, h - 1);
}

if (board) {
  build();
  app.addEventListener('flowlab:stats', (ev) => draw(ev.detail));
  setInterval(sample, 1000);
}
