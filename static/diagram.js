// diagram.js: the pattern's topology as SVG, node states drawn on the nodes,
// and every hop as a mark moving along an edge.

import { markOf } from './marks.js';

const NS = 'http://www.w3.org/2000/svg';
// Smallest box per kind; a box widens to fit its label and grows to fit its badges.
const SIZE = {
  service: [220, 100], gate: [210, 84], client: [220, 80], exchange: [180, 86],
  queue: [190, 86], consumer: [190, 86], dlq: [190, 86], topic: [200, 60],
  partition: [260, 52], member: [240, 84],
};
// Compact kinds stand in long stacks (a topic's partitions, a group's
// members). A lane is one line: label, badges joined, state at the end. A card
// has label and state, then its first badge, then the others joined. Both
// grow to the right only, so a stack stays aligned.
const COMPACT = { partition: 'lane', member: 'card' };
const BADGE_LINE = 24;
const MAX_MARKS = 140;   // beyond this the view samples; counters stay exact
const TRAVEL_MS = 700;
const MIN_LABELLED_EDGE = 200; // shorter edges carry no label: it would cover the nodes

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
  constructor(svg, { onPick }) {
    this.svg = svg;
    this.onPick = onPick;
    this.nodes = new Map(); // id -> {node, g, box, label, stateTag, badges, note, w, h, base}
    this.edges = [];        // {a, b, line, text, both}
    this.marks = [];
    this.tick = this.tick.bind(this);
  }

  setView(view) {
    const width = view.width || 1000, height = view.height || 560;
    this.svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
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
      const [minW, h] = SIZE[n.kind] || [200, 86];
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
        note.textContent = shorten(n.note, Math.floor((w + 140) / 11)); // may overhang its box a little
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
      edge.line = el('line', { class: 'edge', 'marker-end': 'url(#arrow)' }, this.edgeLayer);
      if (edge.both) edge.line.setAttribute('marker-start', 'url(#arrow)');
      if (edge.label) {
        edge.text = el('text', { class: 'edge-label' }, this.edgeLayer);
        edge.text.textContent = edge.label;
      }
      this.edges.push(edge);
    }
    this.layoutEdges();
  }

  // place positions a node's box and texts for its current size.
  place(n) {
    const { node, w, h } = n;
    const left = COMPACT[node.kind] ? node.x - n.baseW / 2 : node.x - w / 2;
    n.g.setAttribute('transform', `translate(${left},${node.y - h / 2})`);
    n.box.setAttribute('height', h);
    n.box.setAttribute('width', w);
    const compact = COMPACT[node.kind];
    if (compact) {
      n.label.setAttribute('x', 14);
      n.label.setAttribute('y', compact === 'lane' ? h / 2 + 8 : 26);
      n.stateTag.setAttribute('x', w - 12);
      n.stateTag.setAttribute('y', compact === 'lane' ? h / 2 + 7 : 24);
      n.badges.setAttribute('x', compact === 'lane' ? n.labelW + 10 : 14);
      n.badges.setAttribute('y', compact === 'lane' ? h / 2 + 7 : 50);
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

  layoutEdges() {
    for (const e of this.edges) {
      const [p, q] = this.ends(e.a, e.b);
      e.line.setAttribute('x1', p[0]); e.line.setAttribute('y1', p[1]);
      e.line.setAttribute('x2', q[0]); e.line.setAttribute('y2', q[1]);
      if (!e.text) continue;
      const dx = q[0] - p[0], dy = q[1] - p[1];
      e.text.style.display = Math.hypot(dx, dy) < MIN_LABELLED_EDGE ? 'none' : '';
      // Above a level edge, beside a steep one, clear of the marks on it.
      const mx = (p[0] + q[0]) / 2, my = (p[1] + q[1]) / 2;
      const level = Math.abs(dx) >= Math.abs(dy);
      e.text.setAttribute('x', level ? mx : mx - 18);
      e.text.setAttribute('y', level ? my - 82 : my + 6);
      e.text.setAttribute('class', level ? 'edge-label' : 'edge-label side');
    }
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
      n.stateTag.textContent = s.state ? s.state.toUpperCase() : '';
      const list = (s.facts || []).map((f) => f.badge).filter(Boolean);
      // Tests and tools read a node's typed facts here, never its badge text.
      n.g.dataset.facts = JSON.stringify(Object.fromEntries((s.facts || []).map((f) => [f.name, f.value])));
      n.badges.replaceChildren();
      let w = n.baseW, h = n.base;
      if (COMPACT[n.node.kind] === 'lane') {
        n.badges.textContent = list.join(' · ');
        w = Math.max(n.baseW, n.labelW + 10 + textWidth(n.badges) + textWidth(n.stateTag) + 24);
      } else if (COMPACT[n.node.kind] === 'card') {
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
    const lane = (pt, dy) => [pt[0], pt[1] + dy];
    switch (e.kind) {
      case 'timeout': case 'reject': return [lane(mid, 14), lane(p, 14)];
      case 'error': return [lane(q, 14), lane(p, 14)];
      case 'response': return [lane(p, 14), lane(q, 14)];
      default: return [lane(p, -14), lane(q, -14)];
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
    this.marks.push({ g, from, to, start: performance.now(), still });
  }

  tick(now) {
    this.marks = this.marks.filter((m) => {
      const t = (now - m.start) / TRAVEL_MS;
      if (t >= 1.35) { m.g.remove(); return false; }
      const k = m.still ? 1 : Math.min(t, 1);
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

  // ends clips the line between two node centres to their boxes.
  ends(a, b) {
    const ca = this.center(a), cb = this.center(b);
    return [clip(ca, cb, a.w / 2 + 6, a.h / 2 + 6), clip(cb, ca, b.w / 2 + 10, b.h / 2 + 10)];
  }
}

// clip moves p toward q until it leaves a box of half-size hw × hh around p.
function clip(p, q, hw, hh) {
  const dx = q[0] - p[0], dy = q[1] - p[1];
  const sx = dx ? hw / Math.abs(dx) : Infinity, sy = dy ? hh / Math.abs(dy) : Infinity;
  const s = Math.min(sx, sy, 1);
  return [p[0] + dx * s, p[1] + dy * s];
}
