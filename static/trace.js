// trace.js: every hop of one message with its timings, fetched from the
// server, which keeps the hops of recent messages even when the view sampled
// them out.

import { summary } from './marks.js';

export class Trace {
  constructor(dialog, base) {
    this.dialog = dialog;
    this.body = dialog.querySelector('#trace-body');
    this.title = dialog.querySelector('#trace-title');
    this.base = base;
  }

  async show(id) {
    this.title.textContent = `Message ${id}`;
    this.body.textContent = 'loading…';
    if (!this.dialog.open) this.dialog.showModal();
    let data;
    try {
      const r = await fetch(`${this.base}/messages/${encodeURIComponent(id)}`);
      data = await r.json();
      if (!r.ok) throw new Error(data.error || r.statusText);
    } catch (err) {
      this.body.textContent = `Could not load this message: ${err.message}`;
      return;
    }
    const first = Date.parse(data.hops[0].t);
    const table = document.createElement('table');
    table.innerHTML = '<thead><tr><th>+ms</th><th>hop</th><th>from → to</th><th>attempt</th><th>detail</th></tr></thead>';
    const tbody = document.createElement('tbody');
    let payload = '';
    for (const h of data.hops) {
      const tr = document.createElement('tr');
      tr.className = `kind-${h.kind}`;
      const cells = [
        ((Date.parse(h.t) - first) || 0).toFixed(0),
        h.kind,
        h.to && h.to !== h.from ? `${h.from} → ${h.to}` : h.from || '',
        h.attempt || '',
        summary(h),
      ];
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = c;
        tr.append(td);
      }
      tbody.append(tr);
      if (h.detail && h.detail.payload && !payload) payload = h.detail.payload;
    }
    table.append(tbody);
    this.body.replaceChildren(table);
    if (payload) {
      const h3 = document.createElement('h3');
      h3.textContent = 'Payload';
      const pre = document.createElement('pre');
      pre.textContent = payload;
      this.body.append(h3, pre);
    }
  }
}
