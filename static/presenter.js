// presenter.js: presenter mode, for a lab on a projector. The server draws
// the page in it when asked by ?present=1 (large type, the knobs folded, a
// button per main failure); this tab keeps it on across pages until it is
// switched off. Each main failure has a key, pressing the page's own
// control as the node menu does; 1–9 open the patterns, whose tabs but the
// current one fold away; "?" lists the keys.

const STORE = 'flowlab.present';

// presenter wires the page; controls shows what a key did or why not.
export function presenter(app, controls) {
  const on = document.body.classList.contains('presenter');
  const url = new URL(location.href);
  if ('presentOff' in app.dataset) sessionStorage.removeItem(STORE);
  else if (on) sessionStorage.setItem(STORE, '1');
  else if (sessionStorage.getItem(STORE) === '1' && !url.searchParams.has('present')) {
    url.searchParams.set('present', '1');
    location.replace(url);
    return;
  }

  document.getElementById('present-toggle').addEventListener('click', () => {
    const next = new URL(location.href);
    next.searchParams.delete('spotlight');
    if (on) {
      sessionStorage.removeItem(STORE);
      next.searchParams.delete('present');
    } else {
      next.searchParams.set('present', '1');
    }
    location.assign(next);
  });
  if (!on) return;

  // The other patterns open in presenter mode too, without a reload.
  for (const a of document.querySelectorAll('.tabs a[href]')) {
    const to = new URL(a.href);
    to.searchParams.set('present', '1');
    a.href = to.pathname + to.search;
  }

  const fold = document.getElementById('knobs-fold');
  if (fold) {
    fold.addEventListener('click', () => {
      const open = document.body.classList.toggle('knobs-open');
      fold.setAttribute('aria-expanded', String(open));
      fold.textContent = open ? 'Knobs ▾' : 'Knobs ▸';
    });
  }

  const dialog = document.getElementById('keys');
  const opener = document.getElementById('keys-open');
  if (opener && dialog) opener.addEventListener('click', () => dialog.showModal());

  const spotlight = document.querySelector('[data-testid="spotlight"]');
  const readOnly = 'watching' in app.dataset;
  const buttons = new Map(); // key → its button in the strip
  for (const b of document.querySelectorAll('.keys-strip [data-press]')) {
    buttons.set(b.querySelector('kbd').textContent, b);
    b.addEventListener('click', () => press(b));
  }

  function press(b) {
    const what = b.lastChild.textContent.trim();
    if (readOnly) {
      const whose = spotlight ? spotlight.textContent : 'Watching someone else\'s sandbox (read-only)';
      controls.show(`${whose}: “${what}” was not sent.`, 'error');
      return;
    }
    const control = controlOf(b.dataset.press);
    if (!control || control.disabled) {
      controls.show(`“${what}” cannot be pressed on this page now.`, 'error');
      return;
    }
    control.click();
    controls.show(`${b.querySelector('kbd').textContent}: ${what}`, 'info');
  }

  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (document.querySelector('dialog[open]')) return; // Escape is the open dialog's
    if (e.key === '?') {
      if (dialog) {
        e.preventDefault();
        dialog.showModal();
      }
      return;
    }
    const tab = /^[1-9]$/.test(e.key) && document.querySelectorAll('.tabs a[href]')[Number(e.key) - 1];
    if (tab) {
      location.assign(tab.href);
      return;
    }
    const b = buttons.get(e.key.toUpperCase());
    if (b && e.key.length === 1) {
      e.preventDefault();
      press(b);
    }
  });
}

// controlOf is the page's own control of knob: its take-down switch, its
// action button or its on/off box.
function controlOf(knob) {
  const k = CSS.escape(knob);
  return document.querySelector(`[data-switch="${k}"]`) ||
    document.querySelector(`.knob[data-knob="${k}"] button, .knob[data-knob="${k}"] input[type="checkbox"]`);
}

// typing: a key pressed in a field is the field's.
function typing(el) {
  return el instanceof Element && (el.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])') !== null);
}
