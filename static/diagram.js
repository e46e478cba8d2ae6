// diagram.js: the pattern's topology as SVG, node states drawn on the nodes,
// and every hop as a mark moving along an edge.

import { markOf } from './marks.js';

const NS = 'http://www.w3.org/2000/svg';
// Smallest box per kind; a box widens to fit its label and grows to fit its badges.
const SIZE = {
  service: [220, 100], gate: [210, 84], client: [220, 80], exchange: [180, 86],
  queue: [190, 86], consumer: [190, 86], dlq: [190, 86], topic: [200, 60],
  partition: [260, 84], member: [240, 84],
};
// Compact kinds stand in long stacks (a topic's partitions, a group's
// members) as cards: label and state, then the first badge, then the others
// joined. A card grows to the right only, so a stack stays aligned.
const COMPACT = { partition: 'card', member: 'card' };
const BADGE_LINE = 24;
const STATE_ABOVE = 32; // a box's state word stands this high above it
const MAX_MARKS = 140;   // beyond this the view samples; counters stay exact
const TRAVEL_MS = 700;
const LANE = 14;       // marks travel this far either side of an edge's line
const MARK_R = 11;    // and are this big: nothing written may lie that close to a line

const reduced = window.matchMedia('(prefers-reduced-motion: reduce)');

// textWidth is how wide a text is drawn, in canvas units; 12 a character
// while the diagram is not laid out (hidden), which is about right.
function textWidth(t) {
  const w = t.getComputedTextLength();
  return w > 0 ? w : t.textContent.length * 12;
}

function el(name, attrs = {}, parent) {
  const n = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (parent) parent.appendChild(n);
  return n;
}

// shorten keeps a note within its node's width; the whole text stays in a tooltip.
function shorten(text, chars) {
  return text.length <= chars ? text : text.slice(0, chars - 1) + '…';
}

export class Diagram {
  constructor(svg, { onPick, present = false }) {
    this.svg = svg;
    this.onPick = onPick;
    this.present = present;
    this.nodes = new Map(); // id -> {node, g, box, label, stateTag, badges, note, w, h, base}
    this.edges = [];        // {a, b, line, text, both}
    this.marks = [];
    this.tick = this.tick.bind(this);
  }

  setView(view) {
    const width = view.width || 1000, height = view.height || 560;
    // Presenter mode writes the words at a size on the screen, whatever the
    // view's: --px is one screen pixel in canvas units, for the stylesheet;
    // margins hold the boxes that the larger words widen, more on the right,
    // where a stack's cards grow.
    const [left, right, pad] = this.present ? [0.03 * width, 0.06 * width, 0.03 * height] : [0, 0, 0];
    const boxW = width + left + right, boxH = height + 2 * pad;
    this.svg.setAttribute('viewBox', `${-left} ${-pad} ${boxW} ${boxH}`);
    const screen = this.svg.getBoundingClientRect();
    if (this.present && screen.width > 0 && screen.height > 0) this.svg.style.setProperty('--px', Math.max(boxW / screen.width, boxH / screen.height));
    this.svg.replaceChildren();
    this.nodes.clear();
    this.edges = [];
    this.marks = [];
    const defs = el('defs', {}, this.svg);
    const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' }, defs);
    el('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }, marker);
    this.edgeLayer = el('g', { class: 'edges' }, this.svg);
    this.nodeLayer = el('g', { class: 'nodes' }, this.svg);
    this.markLayer = el('g', { class: 'marks' }, this.svg);

    for (const n of view.nodes) {
      const [kindW, h] = SIZE[n.kind] || [200, 86];
      const minW = n.width || kindW;
      const g = el('g', { class: `node kind-${n.kind}`, 'data-node': n.id }, this.nodeLayer);
      const box = el('rect', { height: h, rx: n.kind === 'gate' ? 40 : 12, class: 'box' }, g);
      // A gate stands on an edge: its label goes below it, clear of the marks passing through.
      const label = el('text', { class: 'label' }, g);
      label.textContent = n.label;
      const labelW = textWidth(label) + 24;
      const w = Math.max(minW, labelW + 12);
      const stateTag = el('text', { x: w / 2, y: -10, class: 'state-tag' }, g);
      const badges = el('text', { x: w / 2, class: 'badges' }, g);
      let note = null;
      if (n.note) {
        note = el('text', { x: w / 2, class: 'note' }, g);
        // A note may overhang its box, never the canvas; fitNotes shortens
        // it further where it runs into a neighbour.
        const room = Math.min(w + 140, 2 * Math.min(n.x, width - n.x) - 8);
        // A character of the monospaced note is 11 units wide, or 0.6 of
        // its size in presenter mode, whose notes are larger.
        const char = this.present ? 0.6 * parseFloat(getComputedStyle(note).fontSize) : 11;
        note.textContent = shorten(n.note, Math.floor(room / char));
        el('title', {}, note).textContent = n.note;
      }
      const entry = { node: n, g, box, label, stateTag, badges, note, w, h, base: h, baseW: w, labelW };
      this.nodes.set(n.id, entry);
      this.place(entry);
    }
    // One line per pair of nodes, with an arrowhead at each end a message goes to.
    const pairs = new Map();
    for (const e of view.edges) {
      const a = this.nodes.get(e.from), b = this.nodes.get(e.to);
      if (!a || !b) continue;
      const back = pairs.get(`${e.to}|${e.from}`);
      if (back) { back.both = true; continue; }
      pairs.set(`${e.from}|${e.to}`, { a, b, label: e.label, both: false });
    }
    for (const edge of pairs.values()) {
      const name = `${edge.a.node.id}→${edge.b.node.id}`;
      edge.line = el('line', { class: 'edge', 'marker-end': 'url(#arrow)', 'data-edge': name }, this.edgeLayer);
      if (edge.both) edge.line.setAttribute('marker-start', 'url(#arrow)');
      if (edge.label) {
        edge.text = el('text', { class: 'edge-label', 'data-edge': name }, this.edgeLayer);
        edge.text.textContent = edge.label;
      }
      this.edges.push(edge);
    }
    this.width = width;
    this.height = height;
    this.fitNotes();
    this.layoutEdges();
  }

  // fitNotes shortens, a character at a time, each note that runs into
  // another node's box or state word, or under an edge's line (down to a
  // readable 22 characters: a line may cross a note, never hide it), then
  // the longer of any two notes that run into each other. The whole note
  // stays in its tooltip.
  fitNotes() {
    const all = [...this.nodes.values()];
    const lines = this.edges.map((e) => this.ends(e.a, e.b));
    const notes = all.filter((n) => n.note);
    const at = (n) => {
      const b = n.note.getBBox();
      return { x: b.x + n.left, y: b.y + n.top, width: b.width, height: b.height };
    };
    const cut = (n, least = 12) => {
      const t = n.note.firstChild;
      if (t.nodeValue.length <= least) return false;
      t.nodeValue = shorten(n.node.note, t.nodeValue.length - 1);
      return true;
    };
    for (const n of notes) {
      const boxes = all.filter((o) => o !== n).map((o) => {
        const above = COMPACT[o.node.kind] ? 0 : STATE_ABOVE; // a card's state is inside it
        return { x: o.left, y: o.top - above, width: o.w, height: o.h + above };
      });
      while (boxes.some((b) => overlap(at(n), b)) && cut(n));
      while (lines.some(([p, q]) => nearLine(p, q, at(n), 3)) && cut(n, 22));
    }
    for (let again = true; again;) {
      again = false;
      for (const a of notes) {
        for (const b of notes) {
          if (a === b || !overlap(at(a), at(b))) continue;
          again = cut(a.note.firstChild.nodeValue.length >= b.note.firstChild.nodeValue.length ? a : b) || again;
        }
      }
    }
  }

  // place positions a node's box and texts for its current size.
  place(n) {
    const { node, w, h } = n;
    const left = COMPACT[node.kind] ? node.x - n.baseW / 2 : node.x - w / 2;
    n.left = left;
    n.top = node.y - h / 2;
    n.g.setAttribute('transform', `translate(${left},${n.top})`);
    n.box.setAttribute('height', h);
    n.box.setAttribute('width', w);
    if (COMPACT[node.kind]) {
      n.label.setAttribute('x', 14);
      n.label.setAttribute('y', 26);
      n.stateTag.setAttribute('x', w - 12);
      n.stateTag.setAttribute('y', 24);
      n.badges.setAttribute('x', 14);
      n.badges.setAttribute('y', 50);
      for (const t of n.badges.children) t.setAttribute('x', 14);
    } else {
      n.label.setAttribute('y', node.kind === 'gate' ? h + 28 : 32);
      n.badges.setAttribute('y', node.kind === 'gate' ? h + 54 : 58);
      for (const t of n.badges.children) t.setAttribute('x', w / 2);
      n.label.setAttribute('x', w / 2);
      n.stateTag.setAttribute('x', w / 2);
    }
    if (n.note) {
      n.note.setAttribute('x', w / 2);
      n.note.setAttribute('y', h + 24);
    }
  }

  // layoutEdges draws each edge between its nodes' boxes, then puts its label
  // beside it where the label covers no node, no other label and no lane
  // of marks; an edge with no such place goes unlabelled.
  layoutEdges() {
    for (const e of this.edges) {
      [e.p, e.q] = this.ends(e.a, e.b);
      e.line.setAttribute('x1', e.p[0]); e.line.setAttribute('y1', e.p[1]);
      e.line.setAttribute('x2', e.q[0]); e.line.setAttribute('y2', e.q[1]);
    }
    for (const n of this.nodes.values()) this.placeState(n);
    // A node keeps the room its state word, gate badges and note will take
    // once drawn, though they may be empty yet.
    const taken = [...this.nodes.values()].map((n) => {
      const b = n.g.getBBox();
      const top = Math.min(b.y, COMPACT[n.node.kind] ? 0 : -STATE_ABOVE);
      const bottom = Math.max(b.y + b.height, n.h + (n.node.kind === 'gate' ? 62 : 0) + (n.note ? 30 : 0));
      return { x: b.x + n.left, y: top + n.top, width: b.width, height: bottom - top };
    });
    for (const e of this.edges) {
      if (!e.text) continue;
      const spot = this.labelSpot(e, taken);
      e.text.style.display = spot ? '' : 'none';
      if (spot) taken.push(spot);
    }
  }

  // placeState stands a box's state word above its middle, or, where the
  // lane of an edge reaching that side passes there, above the corner
  // clear of every lane: marks never run over it. A card's stays inside.
  placeState(n) {
    if (COMPACT[n.node.kind] || !this.edges.length || !n.stateTag.textContent) return;
    const t = n.stateTag;
    for (const [x, anchor] of [[n.w / 2, 'middle'], [2, 'start'], [n.w - 2, 'end']]) {
      t.setAttribute('x', x);
      t.style.textAnchor = anchor;
      const b = t.getBBox();
      const at = { x: b.x + n.left, y: b.y + n.top, width: b.width, height: b.height };
      if (!this.edges.some((e) => e.p && nearLine(e.p, e.q, at, LANE + MARK_R))) return;
    }
    t.setAttribute('x', n.w / 2);
    t.style.textAnchor = 'middle';
  }

  // labelSpot tries places beside the middle of an edge, then nearer its
  // ends, on either side; it leaves the label at the first clear one.
  labelSpot(e, taken) {
    const [p, q] = [e.p, e.q];
    const len = Math.hypot(q[0] - p[0], q[1] - p[1]);
    if (!len) return null;
    const nx = -(q[1] - p[1]) / len, ny = (q[0] - p[0]) / len;
    e.text.style.display = '';
    const b0 = e.text.getBBox();
    const half = (Math.abs(nx) * (b0.width || 80) + Math.abs(ny) * (b0.height || 22)) / 2;
    const off = LANE + MARK_R + 4 + half;
    for (const [t, away] of [[0.5, 0], [0.35, 0], [0.65, 0], [0.5, 40], [0.35, 40], [0.65, 40], [0.5, 80]]) {
      for (const side of [-1, 1]) {
        const d = (off + away) * side;
        const cx = p[0] + (q[0] - p[0]) * t + nx * d, cy = p[1] + (q[1] - p[1]) * t + ny * d;
        e.text.setAttribute('x', cx);
        e.text.setAttribute('y', cy + 7); // the baseline, a third of the text below its middle
        const b = e.text.getBBox();
        const inCanvas = b.x >= 0 && b.y >= 0 && b.x + b.width <= this.width && b.y + b.height <= this.height;
        if (inCanvas && !taken.some((o) => overlap(b, o)) && !this.edges.some((o) => nearLine(o.p, o.q, b, LANE + MARK_R))) {
          return { x: b.x, y: b.y, width: b.width, height: b.height };
        }
      }
    }
    return null;
  }

  // setStates draws each node's state word and the badges of its facts on
  // the node itself,
  // growing a box that has more badges than it has room for.
  setStates(states = {}) {
    let grown = false;
    for (const [id, s] of Object.entries(states)) {
      const n = this.nodes.get(id);
      if (!n) continue;
      n.g.setAttribute('class', `node kind-${n.node.kind} state-${(s.state || '').replace(/\s+/g, '-')}`);
      const word = s.state ? s.state.toUpperCase() : '';
      const moved = n.stateTag.textContent !== word;
      n.stateTag.textContent = word;
      const list = (s.facts || []).map((f) => f.badge).filter(Boolean);
      // Tests and tools read a node's typed facts here, never its badge text.
      n.g.dataset.facts = JSON.stringify(Object.fromEntries((s.facts || []).map((f) => [f.name, f.value])));
      n.badges.replaceChildren();
      let w = n.baseW, h = n.base;
      if (COMPACT[n.node.kind]) {
        const lines = [list[0] || '', list.slice(1).join(' · ')].map((text, i) => {
          const t = el('tspan', { x: 14, dy: i === 0 ? 0 : 22 }, n.badges);
          t.textContent = text;
          return t;
        });
        w = Math.max(n.baseW, 28 + Math.max(...lines.map((t) => t.getComputedTextLength())), n.labelW + textWidth(n.stateTag) + 34);
      } else {
        const lines = list.map((b, i) => {
          const t = el('tspan', { x: n.w / 2, dy: i === 0 ? 0 : BADGE_LINE }, n.badges);
          t.textContent = b;
          return t;
        });
        if (n.node.kind !== 'gate') {
          h = Math.max(n.base, 52 + BADGE_LINE * list.length);
          w = Math.max(n.baseW, 28 + Math.max(0, ...lines.map((t) => t.getComputedTextLength())));
        }
      }
      if (h !== n.h || w !== n.w) {
        n.h = h;
        n.w = w;
        this.place(n);
        grown = true;
      } else if (moved) {
        this.placeState(n);
      }
    }
    if (grown) this.layoutEdges();
  }

  // animate adds a mark per event, sampling when too many are in the air.
  animate(events) {
    for (const e of events) {
      const kind = markOf(e);
      if (!kind) continue;
      if (this.marks.length >= MAX_MARKS) continue;
      const path = this.pathFor(e);
      if (path) this.addMark(kind, path, e.msg);
    }
    if (this.marks.length && !this.running) {
      this.running = true;
      requestAnimationFrame(this.tick);
    }
  }

  // pathFor is where a mark travels: requests and deliveries go from the
  // sender to the receiver; failures come back from where they happened to
  // the caller; a retry pulses on the caller.
  pathFor(e) {
    const a = this.nodes.get(e.from), b = this.nodes.get(e.to || e.from);
    if (!a || !b) return null;
    if (a === b) { const c = this.center(a); return [c, c]; }
    const [p, q] = this.ends(a, b);
    const mid = [(p[0] + q[0]) / 2, (p[1] + q[1]) / 2];
    // Two lanes either side of the line, whichever way it runs: out on
    // one, back on the other.
    const len = Math.hypot(q[0] - p[0], q[1] - p[1]) || 1;
    const side = (q[0] - p[0] < 0) || (q[0] === p[0] && q[1] < p[1]) ? -1 : 1;
    const nx = -(q[1] - p[1]) / len * side, ny = (q[0] - p[0]) / len * side;
    const lane = (pt, d) => [pt[0] + nx * d, pt[1] + ny * d];
    switch (e.kind) {
      case 'timeout': case 'reject': return [lane(mid, LANE), lane(p, LANE)];
      case 'error': return [lane(q, LANE), lane(p, LANE)];
      case 'response': return [lane(p, LANE), lane(q, LANE)];
      default: return [lane(p, -LANE), lane(q, -LANE)];
    }
  }

  addMark(kind, [from, to], msg) {
    const g = el('g', { class: `m ${kind}` }, this.markLayer);
    switch (kind) {
      case 'error': el('path', { d: 'M-9,-9 L9,9 M9,-9 L-9,9', class: 'shape' }, g); break;
      case 'timeout': el('circle', { r: 10, class: 'shape' }, g); break;
      case 'retry': el('path', { d: 'M0,-11 L11,0 L0,11 L-11,0 z', class: 'shape' }, g); break;
      case 'reject': el('rect', { x: -9, y: -9, width: 18, height: 18, class: 'shape' }, g); break;
      case 'external': el('path', { d: 'M0,-11 L10,8 L-10,8 z', class: 'shape' }, g); break;
      case 'notfound': el('circle', { r: 9, class: 'shape' }, g); el('circle', { r: 3, class: 'dot' }, g); break;
      default: el('circle', { r: 9, class: 'shape' }, g);
    }
    if (msg) {
      g.addEventListener('click', () => this.onPick(msg));
      g.setAttribute('role', 'button');
      g.setAttribute('aria-label', `${kind} ${msg}`);
    }
    const still = reduced.matches || (from[0] === to[0] && from[1] === to[1]);
    g.setAttribute('transform', `translate(${from[0]},${from[1]})`); // where it is until its first frame
    this.marks.push({ g, from, to, start: performance.now(), still });
  }

  tick(now) {
    this.marks = this.marks.filter((m) => {
      const t = (now - m.start) / TRAVEL_MS;
      if (t >= 1.35) { m.g.remove(); return false; }
      // A frame's time may precede the mark's start: never draw it behind
      // where it starts, on the texts of its sender.
      const k = m.still ? 1 : Math.max(0, Math.min(t, 1));
      const x = m.from[0] + (m.to[0] - m.from[0]) * k;
      const y = m.from[1] + (m.to[1] - m.from[1]) * k;
      m.g.setAttribute('transform', `translate(${x},${y})`);
      m.g.style.opacity = t > 1 ? String(Math.max(0, (1.35 - t) / 0.35)) : '1';
      return true;
    });
    if (this.marks.length) requestAnimationFrame(this.tick);
    else this.running = false;
  }

  // center is the middle of a node's box: a compact box grows to the right
  // of where its view put it.
  center(n) {
    const shift = COMPACT[n.node.kind] ? (n.w - n.baseW) / 2 : 0;
    return [n.node.x + shift, n.node.y];
  }

  // ends clips the line between two node centres to their boxes. A card of
  // a stack is joined at the middle of its side, never across its
  // neighbours above or below.
  ends(a, b) {
    const side = (n, other) => [n.node.x + (COMPACT[n.node.kind] ? (other[0] > n.node.x ? n.w - n.baseW / 2 : -n.baseW / 2) : 0), n.node.y];
    const ca = COMPACT[a.node.kind] ? side(a, this.center(b)) : this.center(a);
    const cb = COMPACT[b.node.kind] ? side(b, this.center(a)) : this.center(b);
    // A slanted line starts further out, so that a mark in either lane,
    // beside it, stays off the texts inside the box.
    const slant = 16 * Math.min(Math.abs(cb[0] - ca[0]), Math.abs(cb[1] - ca[1])) / (Math.hypot(cb[0] - ca[0], cb[1] - ca[1]) || 1);
    const half = (n) => (COMPACT[n.node.kind] ? 0 : n.w / 2);
    return [clip(ca, cb, half(a) + 6 + slant, a.h / 2 + 6 + slant), clip(cb, ca, half(b) + 10 + slant, b.h / 2 + 10 + slant)];
  }
}

function overlap(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

// nearLine says whether the segment pq passes within r of the box b.
function nearLine(p, q, b, r) {
  const steps = Math.max(1, Math.ceil(Math.hypot(q[0] - p[0], q[1] - p[1]) / 4));
  for (let k = 0; k <= steps; k++) {
    const x = p[0] + (q[0] - p[0]) * k / steps, y = p[1] + (q[1] - p[1]) * k / steps;
    const dx = Math.max(b.x - x, 0, x - b.x - b.width), dy = Math.max(b.y - y, 0, y - b.y - b.height);
    if (Math.hypot(dx, dy) < r) return true;
  }
  return false;
}

// clip moves p toward q until it leaves a box of half-size hw × hh around p.
function clip(p, q, hw, hh) {
  const dx = q[0] - p[0], dy = q[1] - p[1];
  const sx = dx ? hw / Math.abs(dx) : Infinity, sy = dy ? hh / Math.abs(dy) : Infinity;
  const s = Math.min(sx, sy, 1);
  return [p[0] + dx * s, p[1] + dy * s];
}
