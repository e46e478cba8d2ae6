// marks.js: how each hop looks. One table, shared by the diagram, the legend
// and the event log, so a mark means the same everywhere.

// markOf returns the mark class for an event, or '' for events not animated.
export function markOf(e) {
  const d = e.detail || {};
  if (d.external && (e.kind === 'request' || e.kind === 'publish')) return 'external';
  switch (e.kind) {
    case 'request':
      return e.attempt > 1 ? 'retry' : 'request';
    case 'response':
      if (d.status === 404) return 'notfound';
      return d.status >= 200 && d.status < 400 ? 'ok' : 'error';
    case 'timeout': return 'timeout';
    case 'error': return 'error';
    case 'reject': return 'reject';
    case 'publish': case 'route': return 'request';
    case 'deliver': return d.redeliver || d.duplicate ? 'retry' : 'ok';
    case 'ack': case 'commit': return 'ok';
    case 'nack': case 'requeue': return 'retry';
    case 'return': return 'timeout';
    case 'drop': return 'error';
    case 'dead-letter': return 'reject';
    default: return '';
  }
}

// millis shows a time in ms: a tenth below 10 ms, where loopback hops are,
// so that a 0.2 ms ack does not read as 0 ms.
const millis = (ms) => (ms < 10 ? ms.toFixed(1) : String(Math.round(ms)));

// summary is one line of text for an event, for the log and the trace.
export function summary(e) {
  const d = e.detail || {};
  const parts = [];
  if (d.status) parts.push(String(d.status));
  if (d.outcome) parts.push(d.outcome);
  if (d.latencyMs) parts.push(`${millis(d.latencyMs)} ms`);
  if (d.delayMs) parts.push(`wait ${Math.round(d.delayMs)} ms`);
  if (d.error) parts.push(d.error);
  if (d.node && d.state) parts.push(`${d.node} → ${d.state}`);
  if (d.knob) parts.push(`${d.knob} = ${JSON.stringify(d.value)}`);
  if (d.queue) parts.push(`queue ${d.queue}`);
  if (d.key) parts.push(`key ${d.key}`);
  // Partition and offset 0 are left out of the JSON: a Kafka hop has a key or an offset.
  if ((e.kind === 'deliver' || e.kind === 'commit') && (d.key !== undefined || d.offset !== undefined)) parts.push(`p${d.partition || 0}@${d.offset || 0}`);
  if (d.redeliver) parts.push('redelivered');
  if (d.duplicate) parts.push('duplicate');
  if (d.external) parts.push('outside client');
  return parts.join(' · ');
}
