// chart.js: the live chart, one point a second: throughput and success on one
// plot, p50/p99 latency on another. uPlot is vendored and pinned.

import uPlot from './vendor/uplot/uPlot.esm.js';

const KEEP = 180; // seconds shown

export class Charts {
  constructor(box) {
    this.box = box;
    this.data = [[], [], [], [], []]; // time, throughput, success, p50, p99
    const width = () => Math.max(300, box.clientWidth - 8);
    const common = {
      width: width(), height: 200,
      legend: { show: true, live: false },
      cursor: { show: false },
    };
    const font = '16px system-ui, sans-serif';
    const clock = (u, splits) => splits.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour12: false, minute: '2-digit', second: '2-digit' }));
    const xAxis = { font, stroke: '#222', values: clock, space: 70 };
    // At least a minute wide, so the first seconds do not zoom to milliseconds.
    const xRange = (u, min, max) => [Math.min(min, max - 60), max];
    const axis = (label, side = 3, scale) => ({ label, side, scale, font, labelFont: font, size: 60, stroke: '#222', grid: { stroke: '#ddd' } });
    this.rate = new uPlot({
      ...common,
      title: 'Throughput and success',
      scales: { x: { time: true, range: xRange }, n: { auto: true, range: (u, min, max) => [0, Math.max(5, max)] }, pct: { range: [0, 100] } },
      axes: [xAxis, axis('per second', 3, 'n'), axis('success %', 1, 'pct')],
      series: [{}, { label: 'completed/s', scale: 'n', stroke: '#1f5fbf', width: 3 },
        { label: 'success %', scale: 'pct', stroke: '#1a7f37', width: 3 }],
    }, [this.data[0], this.data[1], this.data[2]], box);
    this.latency = new uPlot({
      ...common,
      title: 'Latency (end to end)',
      scales: { x: { time: true, range: xRange }, ms: { range: (u, min, max) => [0, Math.max(10, max)] } },
      axes: [xAxis, axis('ms', 3, 'ms')],
      series: [{}, { label: 'p50', scale: 'ms', stroke: '#6b3fa0', width: 3 },
        { label: 'p99', scale: 'ms', stroke: '#c4381c', width: 3, dash: [8, 4] }],
    }, [this.data[0], this.data[3], this.data[4]], box);
    new ResizeObserver(() => {
      this.rate.setSize({ width: width(), height: 200 });
      this.latency.setSize({ width: width(), height: 200 });
    }).observe(box);
  }

  reset(points) {
    this.data.forEach((a) => { a.length = 0; });
    this.last = 0;
    for (const p of points || []) this.push(p);
    this.redraw();
  }

  // add appends the scenario's newest point if it is new.
  add(p) {
    if (this.push(p)) this.redraw();
  }

  push(p) {
    if (!p || !p.t) return false;
    const t = Date.parse(p.t) / 1000;
    if (!(t > this.last)) return false;
    this.last = t;
    const cols = [t, p.throughput, p.success, p.p50, p.p99];
    cols.forEach((v, i) => this.data[i].push(v));
    if (this.data[0].length > KEEP) this.data.forEach((a) => a.shift());
    return true;
  }

  redraw() {
    this.rate.setData([this.data[0], this.data[1], this.data[2]]);
    this.latency.setData([this.data[0], this.data[3], this.data[4]]);
  }
}
