// controls.js: the knobs, switches and presets. Every change is a command; the
// page shows the server's answer, and a refused change snaps back.

export class Controls {
  constructor(root, conn) {
    this.root = root;
    this.conn = conn;
    this.knobs = new Map(); // name -> declaration with current value
    this.held = null; // the slider the learner is dragging: news does not move it
    this.sending = 0; // commands of this page not answered yet
    this.toast = document.getElementById('toast');
    for (const div of root.querySelectorAll('.knob[data-knob]')) this.bindKnob(div);
    for (const b of root.querySelectorAll('[data-switch]')) {
      b.addEventListener('click', () => {
        const k = this.knobs.get(b.dataset.switch);
        if (k) this.set(k.name, !k.value);
      });
    }
    for (const b of root.querySelectorAll('[data-preset]')) {
      b.addEventListener('click', async () => {
        const r = await this.command({ op: 'preset', preset: b.dataset.preset });
        this.answer(r, `Preset “${b.textContent.trim()}” applied`);
      });
    }
  }

  bindKnob(div) {
    const name = div.dataset.knob;
    const input = div.querySelector('input, select, button');
    if (!input) return;
    switch (div.dataset.type) {
      case 'int': {
        const out = div.querySelector('output');
        input.addEventListener('input', () => {
          this.held = name;
          out.value = this.text(name, Number(input.value));
        });
        input.addEventListener('blur', () => {
          if (this.held !== name) return;
          this.held = null;
          this.draw(this.knobs.get(name)); // let go without a change: show the lab's value
        });
        input.addEventListener('change', () => {
          if (this.held === name) this.held = null;
          let v = Number(input.value);
          const min = Number(input.dataset.min);
          // With an "off" value the slider starts at 0: the first notch above 0 is the minimum.
          if (input.dataset.off && v > 0 && v < min) v = min;
          this.set(name, v);
        });
        break;
      }
      case 'bool':
        input.addEventListener('change', () => this.set(name, input.checked));
        break;
      case 'choice':
        input.addEventListener('change', () => this.set(name, input.value));
        break;
      case 'action':
        input.addEventListener('click', () => this.set(name, null));
        break;
    }
  }

  async set(knob, value) {
    this.answer(await this.command({ op: 'set', knob, value }));
  }

  async command(cmd) {
    this.sending++;
    try {
      return await this.conn.send(cmd);
    } finally {
      this.sending--;
    }
  }

  // announced draws knobs changed by any browser of the lab. A change this
  // page neither asked for nor has drawn already (its own reply may come
  // first) says who made it.
  announced(m) {
    const news = m.knobs.filter((k) => !this.knobs.has(k.name) || this.knobs.get(k.name).value !== k.value);
    this.update(m.knobs);
    if (this.sending === 0 && news.length) {
      this.show(`${news.map((k) => k.label).join(', ')} changed by ${m.by}`, 'info');
    }
  }

  answer(r, okText) {
    if (r.ok) {
      if (r.knobs) this.update(r.knobs);
      if (okText) this.show(okText, 'info');
      return;
    }
    this.show(r.error || 'the lab refused that change', 'error');
    this.update([...this.knobs.values()]); // snap back to what the lab has
  }

  show(text, kind) {
    this.toast.textContent = text;
    this.toast.className = `toast ${kind}`;
    this.toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { this.toast.hidden = true; }, kind === 'error' ? 8000 : 3000);
  }

  // update draws each knob's value as the lab has it: from a snapshot, a
  // reply, or an announcement of knobs any browser of the lab changed.
  update(knobs) {
    for (const k of knobs) {
      this.knobs.set(k.name, k);
      this.draw(k);
    }
  }

  // knobChanged applies a knob state event from any browser in the lab.
  knobChanged(name, value) {
    const k = this.knobs.get(name);
    if (!k) return;
    k.value = value;
    this.draw(k);
  }

  draw(k) {
    const div = this.root.querySelector(`.knob[data-knob="${CSS.escape(k.name)}"]`);
    const input = div && div.querySelector('input, select');
    // The slider being dragged shows the learner's hand; its release sends
    // a command whose reply draws the lab's value.
    if (input && this.held !== k.name) {
      if (k.type === 'bool') input.checked = !!k.value;
      else input.value = k.value;
      const out = div.querySelector('output');
      if (out) out.value = this.text(k.name, k.value);
    }
    const sw = this.root.querySelector(`[data-switch="${CSS.escape(k.name)}"]`);
    if (sw) {
      sw.textContent = k.value ? `Take ${k.group} down` : `Bring ${k.group} back up`;
      sw.setAttribute('aria-pressed', String(!k.value));
    }
  }

  text(name, v) {
    const k = this.knobs.get(name);
    if (!k) return String(v);
    if (v === 0 && k.off) return k.off;
    return k.unit ? `${v} ${k.unit}` : String(v);
  }
}
