// board.js: the instructor's class board. It polls the class's board.json
// every 500 ms (so a learner's change shows within 1 s), draws the way in,
// the class's predictions and a row per learner, and sends pacing commands
// (POST pace): the server decides, and a refusal is shown as it says it.

const POLL_MS = 500;
const KIND_LABEL = { read: 'Read', predict: 'Predict', act: 'Act', check: 'Check', explain: 'Explain' };

const board = document.getElementById('board');
const code = board.dataset.code;
const base = `/classes/${encodeURIComponent(code)}`;
const $ = (id) => document.getElementById(id);

let last = null; // the latest board.json
let readAt = 0; // Date.now() when it arrived: time on a step counts on from the server's "now"
let drawn = { rows: '', predict: '', walk: '', step: -1 }; // what is on screen, so an unchanged poll leaves it alone
let sending = false;
let stopped = false;

// el makes an element with a class and text.
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function stepName(n) {
  const s = last && last.walk.steps[n];
  return s ? `${n + 1}. ${s.title}` : `${n + 1}`;
}

// ---- the way in: code, URL and QR, folded away once everyone is in ----

const foldKey = `flowlab-board-folded-${code}`;
function fold(folded) {
  $('join').hidden = folded;
  $('join-show').hidden = !folded;
  if (folded) sessionStorage.setItem(foldKey, '1');
  else sessionStorage.removeItem(foldKey);
}
$('join-fold').addEventListener('click', () => fold(true));
$('join-show').addEventListener('click', () => fold(false));
fold(sessionStorage.getItem(foldKey) === '1');

// ---- polling ----

// poll asks every POLL_MS, counted from the start of the last ask, so a
// slow answer does not stretch the time to see a change past a second.
async function poll() {
  const started = performance.now();
  try {
    const resp = await fetch(`${base}/board.json`, { cache: 'no-store' });
    const body = await resp.json().catch(() => ({}));
    if (resp.ok) {
      live(true);
      draw(body);
    } else if (resp.status === 403 || resp.status === 404) {
      stopped = true;
      live(false, body.error || `no board (${resp.status})`);
    } else {
      live(false, body.error || `flowlab answered ${resp.status}`);
    }
  } catch {
    live(false, 'flowlab is not answering');
  }
  if (!stopped) setTimeout(poll, Math.max(0, POLL_MS - (performance.now() - started)));
}

function live(ok, why) {
  const pill = $('board-conn');
  pill.classList.toggle('ok', ok);
  pill.classList.toggle('bad', !ok);
  pill.lastElementChild.textContent = ok ? 'live' : why;
}

function draw(b) {
  last = b;
  readAt = Date.now();
  $('board-walk').textContent = b.walk.title;
  $('join-url').textContent = b.join_url;
  drawPace(b);
  drawPredict(b.predict);
  drawLearners(b);
}

// ---- pacing ----

function drawPace(b) {
  const sel = $('pace-step-n');
  if (drawn.walk !== b.walk.id) {
    drawn.walk = b.walk.id;
    drawn.step = -1;
    $('pace-walk-id').value = b.walk.id;
    sel.replaceChildren(...b.walk.steps.map((s, i) => {
      const o = el('option', '', `${i + 1}. ${KIND_LABEL[s.kind] || s.kind}: ${s.title}`);
      o.value = String(i);
      return o;
    }));
  }
  // The class moving elsewhere moves the choice with it; otherwise the
  // instructor's own choice stays while they reach for the button.
  if (drawn.step !== b.step) {
    drawn.step = b.step;
    sel.value = String(b.step);
  }
  const step = b.walk.steps[b.step];
  $('pace-fire').disabled = !(step && step.kind === 'act' && step.button);
  $('pace-lock').textContent = b.lock < 0 ? 'Lock the steps after it' : `Unlock (locked after step ${b.lock + 1})`;
  $('pace-pause').textContent = b.paused ? 'Resume the class' : 'Pause the class';
  $('pace-pause').classList.toggle('paused', b.paused);
  const state = [`The class is on step ${stepName(b.step)}`];
  if (b.lock >= 0) state.push(`nobody goes past step ${b.lock + 1}`);
  if (b.paused) state.push('paused: no load in any sandbox');
  $('pace-state').textContent = state.join(' · ');
}

async function pace(action) {
  if (sending) return;
  sending = true;
  const err = $('pace-error');
  try {
    const resp = await fetch(`${base}/pace`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(action),
    });
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      err.textContent = `Refused: ${body.error || `flowlab answered ${resp.status}`}`;
      err.hidden = false;
      return;
    }
    err.hidden = true;
    if (action.op === 'fire') {
      const failed = body.failed || [];
      if (failed.length > 0) {
        err.textContent = `Done in ${body.done} sandboxes; failed in ${failed.map((f) => `${f.name} (${f.error})`).join(', ')}`;
        err.hidden = false;
      }
    } else if (body.walk) {
      draw(body);
    }
  } catch {
    err.textContent = 'flowlab is not answering: nothing was sent.';
    err.hidden = false;
  } finally {
    sending = false;
  }
}

$('pace-walk').addEventListener('submit', (e) => {
  e.preventDefault();
  pace({ op: 'walk', walk: $('pace-walk-id').value });
});
$('pace-step').addEventListener('submit', (e) => {
  e.preventDefault();
  pace({ op: 'step', step: Number($('pace-step-n').value) });
});
$('pace-lock').addEventListener('click', () => {
  if (!last) return;
  pace({ op: 'lock', step: last.lock < 0 ? Number($('pace-step-n').value) : -1 });
});
$('pace-fire').addEventListener('click', () => pace({ op: 'fire' }));
$('pace-pause').addEventListener('click', () => {
  if (last) pace({ op: last.paused ? 'resume' : 'pause' });
});

// ---- the class's predictions, beside what was measured ----

function drawPredict(p) {
  const box = $('predict');
  const key = JSON.stringify(p);
  if (key === drawn.predict) return;
  drawn.predict = key;
  box.hidden = !p;
  if (!p) return;
  const total = p.choices.reduce((n, c) => n + c.count, 0);
  const most = Math.max(1, ...p.choices.map((c) => c.count));
  const head = el('h2', '', `Predicted, step ${p.step + 1}: ${p.title}`);
  const bars = el('ol', 'bars');
  for (const c of p.choices) {
    const li = el('li', c.id === p.measured ? 'measured' : '');
    li.dataset.choice = c.id;
    li.dataset.count = String(c.count);
    const bar = el('span', 'bar');
    bar.style.setProperty('--share', String(c.count / most));
    const track = el('span', 'track');
    track.append(bar);
    const line = el('span', 'row');
    line.append(track, el('b', 'count', String(c.count)));
    if (c.id === p.measured) line.append(el('span', 'tag', 'measured'));
    li.append(el('span', 'choice', c.text), line);
    bars.append(li);
  }
  const said = total === 1 ? '1 answer' : `${total} answers`;
  const outcome = p.measured
    ? el('p', 'outcome', `${said}. What the labs measured is marked.`)
    : el('p', 'outcome', `${said}. Not measured yet: it shows once a learner's check has judged it.`);
  box.replaceChildren(head, bars, outcome);
}

// ---- a row per learner ----

function drawLearners(b) {
  $('learners-none').hidden = b.learners.length > 0;
  const key = JSON.stringify(b.learners);
  if (key !== drawn.rows) {
    drawn.rows = key;
    $('learners').replaceChildren(...b.learners.map(row));
  }
  tick();
}

function row(l) {
  const tr = el('tr', l.stuck ? 'stuck' : '');
  tr.classList.toggle('offline', !l.online);
  Object.assign(tr.dataset, { name: l.name, step: String(l.step), passed: String(l.passed), since: String(l.since) });
  const name = el('td', 'name', l.name);
  if (!l.online) name.append(el('span', 'tag', 'away'));
  const step = el('td', 'step', `${l.step + 1}. ${l.step_title}`);
  const checks = el('td', 'checks', `${l.passed} of ${l.checks}`);
  checks.classList.toggle('all', l.checks > 0 && l.passed === l.checks);
  const steps = l.assisted.map((n) => n + 1).join(', ');
  const assisted = el('td', 'assisted', l.assisted.length === 0 ? '–' : `step${l.assisted.length > 1 ? 's' : ''} ${steps}`);
  assisted.title = 'steps where the learner pressed "Show me"';
  const time = el('td', 'time');
  const failed = el('td', 'last-fail');
  if (l.failed) {
    failed.append(el('b', '', `${l.failed.step + 1}. ${l.failed.title}`), document.createTextNode(` ${l.failed.hint}`));
  } else {
    failed.textContent = '–';
  }
  const spot = el('td', 'spot');
  const a = el('a', '', 'Spotlight');
  a.href = `/labs/${encodeURIComponent(l.lab)}/${encodeURIComponent(l.pattern)}?present=1&spotlight=${encodeURIComponent(l.name)}`;
  a.target = '_blank';
  a.rel = 'noopener';
  a.title = `${l.name}'s lab in presenter mode, read-only`;
  spot.append(a);
  tr.append(name, step, checks, assisted, time, failed, spot);
  return tr;
}

// tick counts each learner's time on their step on from the last poll.
function tick() {
  if (!last) return;
  const now = last.now + (Date.now() - readAt);
  for (const tr of $('learners').children) {
    const s = Math.max(0, Math.floor((now - Number(tr.dataset.since)) / 1000));
    const text = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
    const cell = tr.querySelector('.time');
    const want = tr.classList.contains('stuck') ? `${text} stuck` : text;
    if (cell.textContent !== want) cell.textContent = want;
  }
}

setInterval(tick, 1000);
poll();
