// walk.js: the walkthrough panel beside the diagram. It polls the lab's
// session (GET /labs/{lab}/walk) while the panel is open, draws the current
// step, and sends the learner's actions (POST, the server validates them).
// What it shows comes from the session's state, never from the page's text.

const POLL_MS = 500;
const KIND_LABEL = { read: 'Read', predict: 'Predict', act: 'Act', check: 'Check', explain: 'Explain' };

export class Walk {
  // lab: the lab's id; diagram: the SVG whose nodes a step highlights;
  // say(text, kind): the page's toast, for a refused action; watching:
  // someone else's sandbox, whose walk this page follows but cannot move.
  constructor(panel, lab, diagram, say, watching) {
    this.panel = panel;
    this.watching = watching;
    this.url = `/labs/${encodeURIComponent(lab)}/walk`;
    this.diagram = diagram;
    this.say = say;
    this.box = panel.querySelector('#walk-step');
    this.back = panel.querySelector('#walk-back');
    this.next = panel.querySelector('#walk-next');
    this.where = panel.querySelector('#walk-where');
    this.walkID = panel.dataset.walk;
    // A class member's: the instructor's pause, and the step they locked.
    this.paused = para('walk-paused', 'Paused by your instructor');
    this.paused.dataset.testid = 'walk-paused';
    this.paused.setAttribute('role', 'status');
    this.paused.hidden = true;
    this.locked = para('walk-lock', '');
    this.locked.dataset.testid = 'walk-lock';
    this.locked.hidden = true;
    this.box.before(this.paused);
    panel.querySelector('.walk-nav').after(this.locked);
    this.state = null;
    this.sending = false;
    this.drawn = ''; // what the step box holds, so an unchanged poll leaves it (and its focus) alone
    this.tickAt = 0; // when left_ms was read, for the countdown between polls
    this.back.addEventListener('click', () => this.go(-1));
    this.next.addEventListener('click', () => this.go(1));
    this.box.addEventListener('click', (e) => this.click(e));
    if (watching) {
      const note = panel.querySelector('.walk-fresh');
      note.textContent = 'You are watching this walkthrough: only the learner whose sandbox this is can move it.';
      note.classList.add('watching-note');
    }
    document.addEventListener('keydown', (e) => this.key(e));
    this.poll();
    setInterval(() => this.countdown(), 250);
  }

  async poll() {
    try {
      const resp = await fetch(this.url, { cache: 'no-store' });
      const body = await resp.json().catch(() => ({}));
      if (resp.ok) this.update(body);
      else this.gone(body.error || `the walkthrough is not available (${resp.status})`);
    } catch {
      // flowlab restarting: the next poll tells.
    }
    if (!this.ended) setTimeout(() => this.poll(), POLL_MS);
  }

  // gone says the lab runs this walk no more, and stops polling.
  gone(why) {
    this.ended = true;
    this.box.replaceChildren(para('walk-gone', why));
    this.back.disabled = this.next.disabled = true;
    this.highlight();
  }

  async send(action) {
    if (this.sending) return;
    this.sending = true;
    this.render();
    try {
      const resp = await fetch(this.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(action),
      });
      const body = await resp.json().catch(() => ({}));
      if (resp.ok) this.update(body);
      else this.say(body.error || `the walkthrough refused that (${resp.status})`, 'error');
    } catch (err) {
      this.say(`could not reach flowlab: ${err.message}`, 'error');
    } finally {
      this.sending = false;
      this.render();
    }
  }

  update(st) {
    // The class's walkthrough changed: its page, the same sandbox.
    if (st.class && this.walkID && st.walk !== this.walkID) {
      this.ended = true;
      const u = new URL(location.href);
      u.pathname = `/labs/${encodeURIComponent(st.lab)}/${encodeURIComponent(st.pattern)}`;
      u.searchParams.set('walk', st.walk);
      location.assign(u);
      return;
    }
    this.state = st;
    this.tickAt = performance.now();
    this.render();
  }

  step() {
    return this.state ? this.state.steps[this.state.step] : null;
  }

  // canNext: the engine's rule, so the button is not offered when it would be refused.
  canNext() {
    const st = this.state, s = this.step();
    if (!st || st.running || this.sending || this.watching || st.step + 1 >= st.steps.length || this.atLock()) return false;
    return s.done || (s.kind === 'check' && s.status === 'not-yet');
  }

  // atLock: the instructor has not opened the step after this one.
  atLock() {
    const c = this.state && this.state.class;
    return Boolean(c) && c.lock >= 0 && this.state.step >= c.lock;
  }

  go(by) {
    const st = this.state;
    if (!st) return;
    if (by > 0 && !this.canNext()) return;
    if (by < 0 && (st.step === 0 || st.running || this.sending)) return;
    this.send({ op: 'go', step: st.step + by });
  }

  key(e) {
    if (!this.state || this.watching || e.altKey || e.ctrlKey || e.metaKey || typing(e.target)) return;
    if (e.key === 'ArrowRight') { e.preventDefault(); this.go(1); return; }
    if (e.key === 'ArrowLeft') { e.preventDefault(); this.go(-1); return; }
    const s = this.step();
    const n = Number(e.key);
    if (s.kind === 'predict' && !s.answer && Number.isInteger(n) && n >= 1 && n <= Math.min(9, s.choices.length)) {
      e.preventDefault();
      this.send({ op: 'answer', step: this.state.step, choice: s.choices[n - 1].id });
    }
  }

  click(e) {
    const b = e.target.closest('button[data-op]');
    if (!b || b.disabled) return;
    const action = { op: b.dataset.op, step: this.state.step };
    if (b.dataset.choice) action.choice = b.dataset.choice;
    this.send(action);
  }

  // render draws the current step; the DOM is rebuilt only when what it
  // shows changed, so a poll keeps focus and never flickers.
  render() {
    const st = this.state;
    if (!st) return;
    const s = this.step();
    const busy = st.running || this.sending || this.watching;
    this.panel.dataset.step = st.step;
    this.panel.dataset.kind = s.kind;
    this.panel.dataset.status = s.status || '';
    this.panel.toggleAttribute('data-running', busy);
    this.where.textContent = `Step ${st.step + 1} of ${st.steps.length}`;
    this.back.disabled = st.step === 0 || busy;
    this.next.disabled = !this.canNext();
    const c = st.class;
    this.paused.hidden = !(c && c.paused);
    this.locked.hidden = !this.atLock();
    if (this.atLock()) this.locked.textContent = `Your instructor has not opened step ${st.step + 2} yet.`;
    const key = JSON.stringify([st.step, s, busy, st.running, this.judged()]);
    if (key !== this.drawn) {
      const moved = this.box.dataset.step !== String(st.step);
      this.drawn = key;
      this.box.replaceChildren(...this.build(s, busy));
      this.box.dataset.step = st.step;
      if (moved) this.box.scrollTop = 0;
    }
    this.countdown();
    this.highlight();
  }

  build(s, busy) {
    const st = this.state;
    const out = [];
    const head = document.createElement('p');
    head.className = `walk-kind kind-${s.kind}`;
    head.textContent = KIND_LABEL[s.kind] || s.kind;
    const title = document.createElement('h3');
    title.className = 'walk-step-title';
    title.textContent = s.title;
    const body = document.createElement('div');
    body.className = 'walk-body';
    body.innerHTML = s.html; // rendered by the server from the walk's Markdown, raw HTML refused at load
    out.push(head, title);
    // The prediction beside what was measured comes first: it is the point.
    const judged = this.judged();
    if (judged && (s.kind === 'check' || s.kind === 'explain')) out.push(score(judged));
    out.push(body);

    if (s.kind === 'predict') {
      const list = document.createElement('div');
      list.className = 'walk-choices';
      s.choices.forEach((c, i) => {
        const b = button(`${i + 1}  ${c.text}`, 'answer', busy || Boolean(s.answer));
        b.dataset.choice = c.id;
        b.dataset.testid = `walk-choice-${c.id}`;
        b.setAttribute('aria-keyshortcuts', String(i + 1));
        b.setAttribute('aria-pressed', String(s.answer === c.id));
        list.append(b);
      });
      out.push(list);
      if (s.answer) out.push(para('walk-locked', 'Your answer is locked. Next, see what really happens.'));
    }
    if (s.kind === 'act') {
      if (s.button) {
        const b = button(st.running ? 'Running…' : s.done ? 'Done — run it again' : 'Do it', 'act', busy);
        b.classList.add('walk-do');
        b.dataset.testid = 'walk-act';
        out.push(b);
      } else {
        out.push(para('walk-yourself', 'Use the controls on this page yourself, then go on.'));
      }
    }
    if (s.kind === 'check') out.push(this.status(s));
    if (s.error) out.push(para('walk-error', s.error));

    const tools = document.createElement('div');
    tools.className = 'walk-tools';
    if (s.show && !(s.kind === 'check' && s.status === 'passed')) {
      const b = button('Show me', 'show', busy);
      b.dataset.testid = 'walk-show';
      b.title = 'flowlab does it for you; the step is marked assisted';
      tools.append(b);
    }
    if ((s.kind === 'act' || s.kind === 'check') && st.steps.slice(0, st.step + 1).some((x) => x.kind === 'act')) {
      const b = button('Reset step', 'reset-step', busy);
      b.dataset.testid = 'walk-reset';
      b.title = 'Start the pattern over and go back to the last action';
      tools.append(b);
    }
    if (tools.childElementCount) out.push(tools);
    return out;
  }

  // status is a check's verdict: waiting with its countdown, passed, or
  // not yet with the hint.
  status(s) {
    const box = document.createElement('div');
    box.className = `walk-status ${s.status}`;
    box.dataset.testid = 'walk-status';
    box.dataset.status = s.status;
    box.setAttribute('role', 'status');
    const word = document.createElement('b');
    const rest = document.createElement('span');
    if (s.status === 'passed') {
      word.textContent = s.assisted ? '✓ Passed (assisted)' : '✓ Passed';
    } else if (s.status === 'not-yet') {
      word.textContent = 'Not yet.';
      rest.textContent = ` ${s.hint || ''}`;
    } else {
      word.textContent = 'Waiting…';
      rest.className = 'walk-left';
      rest.setAttribute('aria-hidden', 'true'); // a ticking count is noise to a screen reader
    }
    box.append(word, rest);
    return box;
  }

  // judged is the latest prediction at or before the current step that
  // has been scored against what the lab measured.
  judged() {
    const st = this.state;
    for (let i = st.step; i >= 0; i--) {
      const s = st.steps[i];
      if (s.kind === 'predict') return s.correct === undefined || s.correct === null ? null : s;
    }
    return null;
  }

  countdown() {
    const s = this.step();
    const left = this.box.querySelector('.walk-left');
    if (!s || !left || s.status !== 'waiting') return;
    const ms = Math.max(0, (s.left_ms || 0) - (performance.now() - this.tickAt));
    left.textContent = ` ${Math.ceil(ms / 1000)} s left`;
  }

  // highlight marks the nodes the current step talks about. An attribute,
  // not a class: the diagram sets a node's class anew with each state.
  // Call it again whenever the diagram draws its nodes anew.
  highlight() {
    const s = !this.ended && this.step();
    const want = new Set(s ? s.nodes || [] : []);
    for (const g of this.diagram.querySelectorAll('[data-node]')) g.toggleAttribute('data-walk-focus', want.has(g.dataset.node));
  }
}

// score shows the learner's prediction and the measured outcome side by side.
function score(p) {
  const box = document.createElement('div');
  box.className = `walk-score ${p.correct ? 'right' : 'wrong'}`;
  box.dataset.testid = 'walk-score';
  box.dataset.correct = String(p.correct);
  const you = document.createElement('div');
  you.innerHTML = '<span class="walk-label">You predicted</span>';
  you.append(para('', p.predicted));
  const got = document.createElement('div');
  got.innerHTML = '<span class="walk-label">Measured</span>';
  got.append(para('', p.measured));
  const verdict = para('walk-verdict', p.correct ? '✓ Right' : '✗ Not what happened');
  box.append(you, got, verdict);
  return box;
}

function button(text, op, disabled) {
  const b = document.createElement('button');
  b.type = 'button';
  b.dataset.op = op;
  b.textContent = text;
  b.disabled = disabled;
  return b;
}

function para(cls, text) {
  const p = document.createElement('p');
  if (cls) p.className = cls;
  p.textContent = text;
  return p;
}

// typing: the key belongs to a field the learner is writing in.
function typing(el) {
  return el instanceof HTMLElement && (el.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName));
}
