// glossary.js: a one-line definition for each piece of jargon a page shows,
// on hover, on tap and on keyboard focus. The terms come once from the
// server (#glossary, JSON); this module finds them in whatever the page
// draws, by text, so it needs no change when a badge's wording does.
//
// In HTML text a term is wrapped in a focusable span. In the diagram, whose
// texts are redrawn every frame, the persistent <text> element is marked
// instead, and the term is read from the piece under the pointer.

const source = document.getElementById('glossary');
const terms = source ? JSON.parse(source.textContent) : [];
const patterns = terms.flatMap((t) => [
  ...(t.match || []).map((m) => ({ re: new RegExp(m, 'gi'), term: t })),
  ...(t.exact || []).map((m) => ({ re: new RegExp(m, 'g'), term: t })),
]);
const byName = new Map(terms.map((t) => [t.term, t]));

// Where jargon is looked for in HTML: knobs, ledger, counters, log, trace,
// callout, summaries, and whatever a page marks with data-gloss. Buttons,
// inputs and the header's live pills are left alone: their code rewrites
// their text nodes directly.
const AREAS = '.knobs label, .knobs legend, .knobs .help, .knobs h3, #ledger, #counters dt, #log, #trace-body, #callout, .summary, .legend, [data-gloss]';
const SKIP = 'button, select, option, input, output, textarea, script, style, a, .gloss, #gloss';
const SVG_TEXT = '#diagram text';

// find returns the terms in a text, in order: at each place the longest
// match wins and matches never overlap.
function find(text) {
  const hits = [];
  for (const { re, term } of patterns) {
    re.lastIndex = 0;
    for (let m; (m = re.exec(text));) {
      if (m[0] === '') { re.lastIndex++; continue; }
      hits.push({ start: m.index, end: m.index + m[0].length, term });
    }
  }
  hits.sort((a, b) => a.start - b.start || b.end - a.end);
  const out = [];
  let end = 0;
  for (const h of hits) {
    if (h.start < end) continue;
    out.push(h);
    end = h.end;
  }
  return out;
}

// The one popover: a term and its definition, beside what was pointed at.
const box = document.createElement('div');
box.id = 'gloss';
box.className = 'gloss-box';
box.setAttribute('role', 'tooltip');
box.dataset.testid = 'gloss';
// A popover stands in the top layer, so it shows above an open dialog too.
box.popover = 'manual';
let pinned = null; // the element a tap or focus opened the popover for
let anchor = null; // the element the popover points at
let pointer = null; // where the mouse last was, as "x,y"
let stillAt = null; // where it was when Escape closed the popover

function show(el, list) {
  if (!list.length) return;
  undescribe();
  box.replaceChildren(...unique(list).map((t) => {
    const p = document.createElement('p');
    const b = document.createElement('b');
    b.textContent = t.term;
    p.append(b, ': ', t.def);
    return p;
  }));
  // Shown again, it moves above whatever entered the top layer since.
  if (open()) box.hidePopover();
  box.showPopover();
  anchor = el;
  place();
  el.setAttribute('aria-describedby', 'gloss');
}

// place puts the popover below its anchor, or above it near the bottom.
function place() {
  const r = anchor.getBoundingClientRect();
  const w = box.offsetWidth, h = box.offsetHeight;
  const left = Math.min(Math.max(8, r.left + r.width / 2 - w / 2), window.innerWidth - w - 8);
  const below = r.bottom + 8 + h <= window.innerHeight;
  box.style.left = `${left}px`;
  box.style.top = `${below ? r.bottom + 8 : Math.max(8, r.top - h - 8)}px`;
}

function open() {
  return box.matches(':popover-open');
}

function hide() {
  if (open()) box.hidePopover();
  pinned = null;
  undescribe();
}

function undescribe() {
  for (const el of document.querySelectorAll('[aria-describedby="gloss"]')) el.removeAttribute('aria-describedby');
}

function unique(list) {
  return [...new Set(list)];
}

// termsAt is what the pointer or focus is on: a wrapped word's term, or the
// terms of the diagram text (the tspan under the pointer when there is one).
function termsAt(target) {
  const word = target.closest && target.closest('.gloss');
  if (word) return { el: word, list: word.dataset.term.split('|').map((n) => byName.get(n)).filter(Boolean) };
  const text = target.closest && target.closest(SVG_TEXT);
  if (!text) return null;
  const piece = target.closest('tspan') || text;
  let list = find(piece.textContent).map((h) => h.term);
  if (!list.length) list = find(text.textContent).map((h) => h.term);
  return list.length ? { el: piece, list } : null;
}

function wrapText(node) {
  const text = node.nodeValue;
  const hits = find(text);
  if (!hits.length) return;
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const h of hits) {
    if (h.start > at) frag.append(text.slice(at, h.start));
    const span = document.createElement('span');
    span.className = 'gloss';
    span.tabIndex = 0;
    span.dataset.term = h.term.term;
    span.textContent = text.slice(h.start, h.end);
    frag.append(span);
    at = h.end;
  }
  if (at < text.length) frag.append(text.slice(at));
  node.replaceWith(frag);
}

// mark annotates one part of the page: wraps terms in HTML text, marks
// diagram texts that hold any.
function mark(root) {
  if (root.nodeType === Node.TEXT_NODE) {
    const parent = root.parentElement;
    if (parent && parent.closest(AREAS) && !parent.closest(SKIP)) wrapText(root);
    else if (parent && parent.closest(SVG_TEXT)) markSVG(parent.closest(SVG_TEXT));
    return;
  }
  if (root.nodeType !== Node.ELEMENT_NODE) return;
  if (root.closest(SVG_TEXT)) { markSVG(root.closest(SVG_TEXT)); return; }
  for (const t of root.querySelectorAll(SVG_TEXT)) markSVG(t);
  const inArea = root.closest(AREAS);
  const areas = inArea ? [root] : root.querySelectorAll(AREAS);
  for (const area of areas) {
    const walker = document.createTreeWalker(area, NodeFilter.SHOW_TEXT);
    const nodes = [];
    for (let n; (n = walker.nextNode());) if (!n.parentElement.closest(SKIP)) nodes.push(n);
    nodes.forEach(wrapText);
  }
  markChoices(root);
}

// markChoices makes a choice knob's label one term that also defines its
// options, which a select cannot show itself: tapping "Queue" defines
// exclusive and durable.
function markChoices(root) {
  const labels = root.matches('.knob[data-type="choice"] label') ? [root] : root.querySelectorAll('.knob[data-type="choice"] label');
  for (const label of labels) {
    if (label.querySelector('.gloss[data-choices]')) continue;
    const select = label.parentElement.querySelector('select');
    if (!select) continue;
    const text = [label.textContent, ...[...select.options].map((o) => o.text)].join(' · ');
    const names = unique(find(text).map((h) => h.term.term));
    if (!names.length) continue;
    const span = document.createElement('span');
    span.className = 'gloss';
    span.tabIndex = 0;
    span.dataset.term = names.join('|');
    span.dataset.choices = '';
    span.textContent = label.textContent;
    label.replaceChildren(span);
  }
}

function markSVG(text) {
  const has = find(text.textContent).length > 0;
  text.classList.toggle('gloss-svg', has);
  if (has) text.setAttribute('tabindex', '0');
  else text.removeAttribute('tabindex');
}

// Pending is marked once per animation frame, however many changes a frame
// of the lab makes.
let pending = [];
function schedule(nodes) {
  if (!pending.length) requestAnimationFrame(flush);
  pending.push(...nodes);
}
function flush() {
  const nodes = pending;
  pending = [];
  for (const n of nodes) if (n.isConnected) mark(n);
}

function start() {
  document.body.append(box);
  mark(document.body);
  new MutationObserver((records) => {
    const nodes = [];
    for (const r of records) {
      if (r.type === 'characterData') nodes.push(r.target);
      else nodes.push(...r.addedNodes);
    }
    if (nodes.length) schedule(nodes);
  }).observe(document.body, { childList: true, subtree: true, characterData: true });

  // Hover shows, leaving hides, unless a tap or focus pinned it.
  document.addEventListener('pointerover', (e) => {
    if (e.pointerType !== 'mouse') return;
    const here = `${e.clientX},${e.clientY}`;
    if (here === stillAt) return;
    stillAt = null;
    pointer = here;
    if (pinned) return;
    const at = termsAt(e.target);
    if (at) show(at.el, at.list);
    else if (open() && !box.contains(e.target)) hide();
  });
  // A tap (or click) on a term pins its definition; a tap elsewhere closes
  // it. A term inside a label or a log line is not also a press of them.
  document.addEventListener('click', (e) => {
    const at = termsAt(e.target);
    if (at) {
      e.preventDefault();
      e.stopPropagation();
      pinned = at.el;
      show(at.el, at.list);
    } else hide(); // elsewhere, or on the popover itself
  }, true);
  document.addEventListener('focusin', (e) => {
    const at = termsAt(e.target);
    if (at) { pinned = at.el; show(at.el, at.list); }
  });
  document.addEventListener('focusout', (e) => { if (pinned && e.target.contains(pinned)) hide(); });
  // Escape closes it, and hovering does not reopen it until the pointer
  // moves: Chrome repeats pointerover when the page changes under a
  // resting pointer.
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || !open()) return;
    stillAt = pointer;
    hide();
  });
  // A scroll moves what the popover points at: it follows.
  document.addEventListener('scroll', () => { if (open() && anchor.isConnected) place(); }, { capture: true, passive: true });
}

start();
