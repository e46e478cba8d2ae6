// log.js: the text record of hops beside the picture: precise, searchable,
// readable by a screen reader. Clicking a line opens that message's trace.

import { markOf, summary } from './marks.js';

const KEEP = 400;       // lines kept
const PER_FRAME = 60;   // lines added per frame; the rest are counted, not drawn

export class EventLog {
  constructor(list, filter, { onPick }) {
    this.list = list;
    this.filter = filter;
    this.onPick = onPick;
    filter.addEventListener('input', () => this.applyFilter());
    list.addEventListener('click', (e) => {
      const li = e.target.closest('li[data-msg]');
      if (li) this.onPick(li.dataset.msg);
    });
    list.addEventListener('keydown', (e) => {
      const li = e.target.closest('li[data-msg]');
      if (li && (e.key === 'Enter' || e.key === ' ')) { e.preventDefault(); this.onPick(li.dataset.msg); }
    });
  }

  reset(events) {
    this.list.replaceChildren();
    this.add(events || []);
  }

  add(events) {
    const shown = events.length > PER_FRAME ? events.slice(-PER_FRAME) : events;
    const frag = document.createDocumentFragment();
    for (const e of shown) frag.prepend(this.line(e));
    if (events.length > shown.length) {
      const li = document.createElement('li');
      li.className = 'skipped';
      li.textContent = `… ${events.length - shown.length} more hops in this instant (counted above, not listed)`;
      li.title = li.textContent;
      frag.append(li);
    }
    this.list.prepend(frag);
    while (this.list.childElementCount > KEEP) this.list.lastElementChild.remove();
  }

  line(e) {
    const li = document.createElement('li');
    const t = new Date(e.t);
    const time = t.toLocaleTimeString([], { hour12: false }) + '.' + String(t.getMilliseconds()).padStart(3, '0');
    const route = e.to && e.to !== e.from ? `${e.from} → ${e.to}` : e.from || '';
    const attempt = e.attempt > 1 ? ` (attempt ${e.attempt})` : '';
    li.className = `kind-${e.kind} mark-${markOf(e) || 'none'}`;
    li.textContent = `${time}  ${e.msg || ''}  ${e.kind}${attempt}  ${route}  ${summary(e)}`;
    li.title = li.textContent; // a line cut short shows whole on hover
    if (e.msg) {
      li.dataset.msg = e.msg;
      li.tabIndex = 0;
      li.title += '\n(click: every hop of this message)';
    }
    if (this.filter.value && !li.textContent.toLowerCase().includes(this.filter.value.toLowerCase())) li.hidden = true;
    return li;
  }

  applyFilter() {
    const q = this.filter.value.toLowerCase();
    for (const li of this.list.children) li.hidden = q !== '' && !li.textContent.toLowerCase().includes(q);
  }
}
