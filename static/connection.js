// connection.js: the websocket to the lab, reconnecting with backoff, and
// commands answered by replies matched on their id. docs/PROTOCOL.md
// describes the messages.

// PROTOCOL is the major version of the messages this page understands; a
// server that speaks another is refused, not misread.
export const PROTOCOL = 2;

export class Connection {
  constructor(url, { onSnapshot, onFrame, onKnobs, onStatus }) {
    this.url = url;
    this.onSnapshot = onSnapshot;
    this.onFrame = onFrame;
    this.onKnobs = onKnobs;
    this.onStatus = onStatus;
    this.nextId = 1;
    this.waiting = new Map(); // command id -> resolve
    this.backoff = 500;
    this.open();
  }

  open() {
    this.onStatus('connecting', 'connecting…');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => { this.backoff = 500; };
    ws.onmessage = (e) => this.receive(JSON.parse(e.data));
    ws.onclose = (e) => {
      for (const resolve of this.waiting.values()) {
        resolve({ ok: false, error: 'the connection closed before the server answered' });
      }
      this.waiting.clear();
      if (this.refused) return; // reconnecting would meet the same server
      const why = e.code === 1009 ? 'the last command was far too large; ' : e.reason ? e.reason + '; ' : '';
      this.onStatus('down', `${why}reconnecting…`);
      setTimeout(() => this.open(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 8000);
    };
  }

  receive(msg) {
    if (msg.v !== PROTOCOL) {
      this.refused = true;
      this.ws.close();
      this.onStatus('down', `this page speaks protocol v${PROTOCOL}, the server v${msg.v ?? '?'}: reload the page`);
      return;
    }
    switch (msg.type) {
      case 'snapshot':
        this.onStatus('live', 'live');
        this.onSnapshot(msg);
        break;
      case 'frame':
        this.onFrame(msg);
        break;
      case 'knobs': // knobs changed by any browser of the lab, this one too
        this.onKnobs(msg);
        break;
      case 'reply': {
        const resolve = this.waiting.get(msg.id);
        this.waiting.delete(msg.id);
        if (resolve) resolve(msg);
        break;
      }
    }
  }

  // send a command; resolves with the server's reply.
  send(cmd) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      return Promise.resolve({ ok: false, error: 'not connected to the lab: wait for “live”' });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.ws.send(JSON.stringify({ id, ...cmd }));
    });
  }
}
