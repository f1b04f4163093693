// One SVG chart per benchmark family, written by hand (no dependency): throughput against the
// size named in the row shapes (V, n, P, ...) as lines on a log x axis, or, when every row has the
// same shape, as horizontal bars; the measured read (and copy) bandwidth as reference lines where
// the family's ops are bandwidth-bound.
import type { BenchRow } from './harness.js';

export type ChartMetric = 'GB/s' | 'Gelem/s' | 'Mcalls/s';

/** How a family is drawn. Every field is optional: without a spec the chart is chosen from the rows. */
export interface ChartSpec {
  /** The shape key on the x axis ('V', 'n', 'P', ...), or 'none' for bars. Default: the first of
   * V, n, P, N, B, T whose value differs between the drawn rows; bars when none does. */
  x?: string;
  /** Axis label of x, e.g. 'vocabulary size V'. */
  xLabel?: string;
  /** Default: GB/s when every drawn row has `bytes`, else Gelem/s when every one has `elements`, else calls/s. */
  metric?: ChartMetric;
  /** Axis label of y (default: the metric). */
  yLabel?: string;
  /** The rows to draw. Default: the rows of a sweep (`row.sweep` set) when there are any, else every row. */
  rows?: (r: BenchRow) => boolean;
  /** The legend entry of a row (lines), or its label (bars). Default: `${op} ${dtype} · ${impl}` (lines), `${op} ${shape} · ${impl}` (bars). */
  series?: (r: BenchRow) => string;
  /** Draw the measured bandwidth lines (the ops are bandwidth-bound). Default: metric is GB/s. */
  bandwidth?: boolean;
  /** Chart title. Default: the family name and what is plotted. */
  title?: string;
}

export interface ChartInput {
  family: string;
  rows: BenchRow[];
  spec?: ChartSpec;
  /** Read bandwidth measured in the same run, GB/s, and its spread (max - min) / median. */
  readGBs: number;
  readSpread?: number;
  /** Copy bandwidth (read + write), GB/s, when measured. */
  copyGBs?: number;
  /** Lines under the title (machine, date, load), separated by newlines. */
  subtitle?: string;
}

const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#444444', '#8C564B', '#7F7F00', '#9467BD'];
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const MAX_SERIES = PALETTE.length;

/** The numeric keys of a shape: 'N=256 V=32000 f32' -> { N: 256, V: 32000 }. */
export function shapeKeys(shape: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of shape.matchAll(/\b([A-Za-z]+)=(\d+(?:\.\d+)?)\b/g)) out[m[1]] = Number(m[2]);
  return out;
}

function dtypeOf(shape: string): string {
  return /\b(f32|bf16|f16|f64)\b/.exec(shape)?.[1] ?? '';
}

export function metricValue(r: BenchRow, metric: ChartMetric): number | undefined {
  if (!Number.isFinite(r.ms) || r.ms <= 0) return undefined;
  if (metric === 'GB/s') return r.bytes ? r.bytes / r.ms / 1e6 : undefined;
  if (metric === 'Gelem/s') return r.elements ? r.elements / r.ms / 1e6 : undefined;
  return 1e-3 / r.ms; // millions of calls per second
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** 32000 -> '32k', 151936 -> '152k', 1048576 -> '1.05M', 64 -> '64'. */
export function formatCount(x: number): string {
  if (x >= 1e6) return `${+(x / 1e6).toPrecision(3)}M`;
  if (x >= 1e4) return `${Math.round(x / 1e3)}k`;
  if (x >= 1e3) return `${+(x / 1e3).toPrecision(2)}k`;
  return `${+x.toPrecision(3)}`;
}

function formatValue(y: number): string {
  if (y === 0) return '0';
  if (y >= 100) return y.toFixed(0);
  if (y >= 10) return y.toFixed(1).replace(/\.0$/, '');
  if (y >= 1) return y.toFixed(2).replace(/\.?0+$/, '');
  return +y.toPrecision(2) + '';
}

/** Round ticks from 0 to at least `max`: 1, 2, 2.5 or 5 times a power of ten per step. */
export function linearTicks(max: number, count = 5): number[] {
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
  const ticks: number[] = [];
  for (let t = 0; t < max + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
  if (ticks[ticks.length - 1] < max) ticks.push(+(ticks[ticks.length - 1] + step).toPrecision(12));
  return ticks;
}

interface Prepared {
  title: string;
  metric: ChartMetric;
  yLabel: string;
  xKey: string | null;
  xLabel: string;
  series: { name: string; color: string; dashed: boolean; points: { x: number; y: number; label: string }[] }[];
  bars: { label: string; y: number; color: string }[];
  dropped: number;
  bandwidth: boolean;
}

function prepare(input: ChartInput): Prepared {
  const spec = input.spec ?? {};
  let rows = input.rows.filter((r) => Number.isFinite(r.ms) && r.ms > 0);
  const hasSweep = rows.some((r) => r.sweep);
  rows = rows.filter(spec.rows ?? ((r) => !hasSweep || !!r.sweep));
  const metric: ChartMetric = spec.metric ??
    (rows.every((r) => r.bytes) ? 'GB/s' : rows.every((r) => r.elements) ? 'Gelem/s' : 'Mcalls/s');
  rows = rows.filter((r) => metricValue(r, metric) !== undefined);
  const keys = rows.map((r) => shapeKeys(r.shape));
  let xKey: string | null = null;
  if (spec.x !== 'none') {
    const candidates = spec.x ? [spec.x] : ['V', 'n', 'P', 'N', 'B', 'T'];
    for (const k of candidates) {
      const vals = new Set(keys.map((s) => s[k]).filter((v) => v !== undefined));
      if (vals.size >= 2 || spec.x === k) {
        xKey = k;
        break;
      }
    }
  }
  const seriesOf = spec.series ?? ((r: BenchRow) => `${r.op}${dtypeOf(r.shape) ? ' ' + dtypeOf(r.shape) : ''} · ${r.impl}`);
  const yLabel = spec.yLabel ?? (metric === 'GB/s' ? 'GB/s read' : metric === 'Gelem/s' ? 'G elements/s' : 'M calls/s');
  const xLabel = spec.xLabel ?? (xKey ? `${xKey} (log scale)` : '');
  const what = xKey ? `${metric} against ${xKey}` : metric;
  const title = spec.title ?? `${input.family}: ${what}`;
  const bandwidth = spec.bandwidth ?? metric === 'GB/s';
  const series: Prepared['series'] = [];
  const bars: Prepared['bars'] = [];
  let dropped = 0;
  if (xKey) {
    const byName = new Map<string, Prepared['series'][number]>();
    rows.forEach((r, i) => {
      const x = keys[i][xKey!];
      if (x === undefined) return void dropped++;
      const name = seriesOf(r);
      let s = byName.get(name);
      if (!s) {
        if (byName.size >= MAX_SERIES) return void dropped++;
        s = { name, color: PALETTE[byName.size], dashed: !r.impl.startsWith('reward-kernels'), points: [] };
        byName.set(name, s);
        series.push(s);
      }
      s.points.push({ x, y: metricValue(r, metric)!, label: r.shape });
    });
    for (const s of series) s.points.sort((a, b) => a.x - b.x);
  } else {
    const colors = new Map<string, string>();
    for (const r of rows) {
      if (!colors.has(r.impl)) colors.set(r.impl, PALETTE[colors.size % PALETTE.length]);
      const label = spec.series ? spec.series(r) : `${r.op} ${r.shape} · ${r.impl}`;
      bars.push({ label, y: metricValue(r, metric)!, color: colors.get(r.impl)! });
    }
  }
  return { title, metric, yLabel, xKey, xLabel, series, bars, dropped, bandwidth };
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
}

/** The SVG document of one family's chart. */
export function renderChart(input: ChartInput): string {
  const p = prepare(input);
  const W = 820;
  const sub = input.subtitle ? input.subtitle.split('\n') : [];
  const left = 70, right = 24, top = 42 + sub.length * 15;
  const refLines: { y: number; label: string; dash: string }[] = [];
  if (p.bandwidth && p.metric === 'GB/s' && input.readGBs > 0) {
    const spread = input.readSpread === undefined ? '' : `, spread ${(100 * input.readSpread).toFixed(0)}%`;
    refLines.push({ y: input.readGBs, label: `read bandwidth ${input.readGBs.toFixed(1)} GB/s (median${spread})`, dash: '6 4' });
    if (input.copyGBs) refLines.push({ y: input.copyGBs, label: `copy bandwidth ${input.copyGBs.toFixed(1)} GB/s (read + write)`, dash: '2 3' });
  }
  const out: string[] = [];
  const head = (H: number) => [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ${FONT} font-size="12">`,
    `<title>${esc(p.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    text(left, 22, p.title, 'font-size="15" font-weight="600" fill="#111"'),
    ...sub.map((l, i) => text(left, 40 + i * 15, l, 'fill="#555" font-size="11"')),
  ];

  if (p.xKey) {
    const plotH = 300;
    const legendRows = Math.ceil((p.series.length + refLines.length) / 2);
    const H = top + plotH + 48 + legendRows * 18 + (p.dropped ? 18 : 0) + 10;
    const plotW = W - left - right;
    const xs = p.series.flatMap((s) => s.points.map((q) => q.x));
    const ys = [...p.series.flatMap((s) => s.points.map((q) => q.y)), ...refLines.map((l) => l.y)];
    const xmin = Math.min(...xs), xmax = Math.max(...xs);
    const lx0 = Math.log10(xmin) - 0.08, lx1 = Math.log10(xmax) + 0.08;
    const X = (x: number) => left + ((Math.log10(x) - lx0) / (lx1 - lx0 || 1)) * plotW;
    const ymax = Math.max(...ys, 1e-9);
    const ymin = Math.min(...ys);
    const logY = ymin > 0 && ymax / ymin > 30;
    let Y: (y: number) => number, yticks: number[];
    if (logY) {
      const a = Math.floor(Math.log10(ymin)), b = Math.ceil(Math.log10(ymax));
      yticks = [];
      // decades, and 2x and 5x within them when the axis spans few decades
      for (let e = a; e <= b; e++) for (const m of b - a <= 2 ? [1, 2, 5] : [1]) if (e < b || m === 1) yticks.push(+(m * 10 ** e).toPrecision(3));
      Y = (y) => top + plotH - ((Math.log10(y) - a) / (b - a || 1)) * plotH;
    } else {
      yticks = linearTicks(ymax * 1.05);
      const t = yticks[yticks.length - 1];
      Y = (y) => top + plotH - (y / t) * plotH;
    }
    out.push(...head(H));
    // grid and y ticks
    for (const t of yticks) {
      const y = Y(t);
      out.push(`<line x1="${left}" y1="${y.toFixed(1)}" x2="${left + plotW}" y2="${y.toFixed(1)}" stroke="#e4e4e4"/>`);
      out.push(text(left - 6, y + 4, formatValue(t), 'text-anchor="end" fill="#333"'));
    }
    // x ticks at the measured sizes
    for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
      const xx = X(x);
      out.push(`<line x1="${xx.toFixed(1)}" y1="${top}" x2="${xx.toFixed(1)}" y2="${top + plotH}" stroke="#f0f0f0"/>`);
      out.push(`<line x1="${xx.toFixed(1)}" y1="${top + plotH}" x2="${xx.toFixed(1)}" y2="${top + plotH + 5}" stroke="#333"/>`);
      out.push(text(xx, top + plotH + 18, formatCount(x), 'text-anchor="middle" fill="#333"'));
    }
    out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
    out.push(text(left + plotW / 2, top + plotH + 36, p.xLabel, 'text-anchor="middle" fill="#111"'));
    out.push(text(16, top + plotH / 2, p.yLabel + (logY ? ' (log scale)' : ''), `text-anchor="middle" fill="#111" transform="rotate(-90 16 ${(top + plotH / 2).toFixed(1)})"`));
    for (const l of refLines) {
      const y = Y(l.y);
      out.push(`<line x1="${left}" y1="${y.toFixed(1)}" x2="${left + plotW}" y2="${y.toFixed(1)}" stroke="#777" stroke-width="1.5" stroke-dasharray="${l.dash}"/>`);
    }
    for (const s of p.series) {
      const pts = s.points.map((q) => `${X(q.x).toFixed(1)},${Y(q.y).toFixed(1)}`).join(' ');
      if (s.points.length > 1) {
        out.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
      }
      for (const q of s.points) {
        out.push(`<circle cx="${X(q.x).toFixed(1)}" cy="${Y(q.y).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(`${s.name}, ${q.label}: ${formatValue(q.y)} ${p.metric}`)}</title></circle>`);
      }
    }
    // legend, two columns
    const entries = [
      ...p.series.map((s) => ({ name: s.name, draw: (x: number, y: number) => `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/><circle cx="${x + 12}" cy="${y}" r="3.5" fill="${s.color}"/>` })),
      ...refLines.map((l) => ({ name: l.label, draw: (x: number, y: number) => `<line x1="${x}" y1="${y}" x2="${x + 24}" y2="${y}" stroke="#777" stroke-width="1.5" stroke-dasharray="${l.dash}"/>` })),
    ];
    const ly = top + plotH + 56;
    entries.forEach((e, i) => {
      const x = left + (i % 2) * (plotW / 2), y = ly + Math.floor(i / 2) * 18;
      out.push(e.draw(x, y - 4));
      out.push(text(x + 30, y, e.name, 'fill="#111"'));
    });
    if (p.dropped) out.push(text(left, ly + legendRows * 18, `${p.dropped} more rows are in the JSON and the table (not drawn).`, 'fill="#555"'));
  } else {
    const barH = 18, gap = 6;
    const maxChars = 64;
    const longest = Math.min(maxChars, Math.max(...p.bars.map((b) => b.label.length)));
    const x0 = Math.max(left, 16 + Math.ceil(longest * 6.4) + 8); // about 6.4 px a character at 12 px
    const plotW = W - x0 - right - 60;
    const n = p.bars.length;
    const plotH = n * (barH + gap) + gap;
    const H = top + plotH + 44 + refLines.length * 18 + 10;
    const vmax = Math.max(...p.bars.map((b) => b.y), ...refLines.map((l) => l.y), 1e-9);
    const ticks = linearTicks(vmax * 1.05);
    const t = ticks[ticks.length - 1];
    const X = (v: number) => x0 + (v / t) * plotW;
    out.push(...head(H));
    for (const tk of ticks) {
      const x = X(tk);
      out.push(`<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${top + plotH}" stroke="#e4e4e4"/>`);
      out.push(text(x, top + plotH + 16, formatValue(tk), 'text-anchor="middle" fill="#333"'));
    }
    p.bars.forEach((b, i) => {
      const y = top + gap + i * (barH + gap);
      const label = b.label.length > maxChars ? b.label.slice(0, maxChars - 1) + '…' : b.label;
      out.push(text(x0 - 8, y + barH - 5, label, 'text-anchor="end" fill="#111"'));
      out.push(`<rect x="${x0}" y="${y}" width="${Math.max(1, X(b.y) - x0).toFixed(1)}" height="${barH}" fill="${b.color}"><title>${esc(`${b.label}: ${formatValue(b.y)} ${p.metric}`)}</title></rect>`);
      out.push(text(X(b.y) + 4, y + barH - 5, formatValue(b.y), 'fill="#333"'));
    });
    out.push(`<line x1="${x0}" y1="${top}" x2="${x0}" y2="${top + plotH}" stroke="#333"/>`);
    out.push(text(x0 + plotW / 2, top + plotH + 34, p.yLabel, 'text-anchor="middle" fill="#111"'));
    refLines.forEach((l, i) => {
      const x = X(l.y);
      out.push(`<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${top + plotH}" stroke="#777" stroke-width="1.5" stroke-dasharray="${l.dash}"/>`);
      const y = top + plotH + 52 + i * 18;
      out.push(`<line x1="${left}" y1="${y - 4}" x2="${left + 24}" y2="${y - 4}" stroke="#777" stroke-width="1.5" stroke-dasharray="${l.dash}"/>`);
      out.push(text(left + 30, y, l.label, 'fill="#111"'));
    });
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}
