// npm run bench [-- family ...] [-- options]: see usage() below and docs/benchmarks.md.
// Measures the memory bandwidth once, runs every bench/<family>.bench.ts (or those named) with
// progress on stderr, prints the results on stdout (an aligned table, Markdown or JSON), and writes
// <family>.json, <family>.svg and latest.md: into bench/results/ (committed) on a full run or with
// --write, else into bench/results/local/ (ignored by git).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { defaultProbeBytes, getNumThreads, measureBandwidth, simdLevel, type BandwidthStats } from '../lib/index.js';
import { renderChart, type ChartSpec } from './chart.js';
import {
  benchDir, formatRow, markdownTable, setProgressSink, textTable,
  type BenchContext, type BenchRow, type BenchSection,
} from './harness.js';

function usage(): string {
  return `usage: npm run bench -- [family ...] [options]

  family ...     run only these (default: every bench/<family>.bench.ts)
  --quick        fewer repetitions and smaller shapes: a smoke run (never writes bench/results/)
  --write        write bench/results/ (committed) even though not every family runs
  --out DIR      write the result files into DIR instead
  --json         print the results as one JSON document on stdout
  --markdown     print Markdown tables on stdout (default: an aligned text table)
  --readme       also replace the results block of docs/benchmarks.md (with the committed results)
  --charts       run nothing: redraw the charts and latest.md from the JSON files already written
  --help         this text

Progress goes to stderr; results to stdout.`;
}

// ---- arguments ------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const flags = new Set<string>();
const only: string[] = [];
let outArg: string | null = null;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--out') outArg = argv[++i] ?? '';
  else if (a.startsWith('--out=')) outArg = a.slice(6);
  else if (a.startsWith('--')) flags.add(a);
  else only.push(a);
}
const KNOWN = ['--quick', '--write', '--json', '--markdown', '--md', '--readme', '--charts', '--help', '-h'];
for (const f of flags) {
  if (!KNOWN.includes(f)) {
    process.stderr.write(`bench: unknown option ${f}\n\n${usage()}\n`);
    process.exit(2);
  }
}
if (flags.has('--help')) {
  console.log(usage());
  process.exit(0);
}
const quick = flags.has('--quick');
const format: 'text' | 'markdown' | 'json' = flags.has('--json') ? 'json' : flags.has('--markdown') || flags.has('--md') ? 'markdown' : 'text';
if (quick && flags.has('--write')) {
  process.stderr.write('bench: --quick results are never written to bench/results/ (use --out DIR to keep them elsewhere)\n');
  process.exit(2);
}

const allFiles = fs.readdirSync(benchDir).filter((f) => f.endsWith('.bench.ts'));
const familyOf = (f: string) => f.replace('.bench.ts', '');
for (const o of only) {
  if (!allFiles.some((f) => familyOf(f) === o)) {
    process.stderr.write(`bench: no family '${o}' (have: ${allFiles.map(familyOf).join(', ')})\n`);
    process.exit(2);
  }
}
const files = allFiles
  .filter((f) => only.length === 0 || only.includes(familyOf(f)))
  .sort((a, b) => (a === 'logprobs.bench.ts' ? -1 : b === 'logprobs.bench.ts' ? 1 : a.localeCompare(b)));

const committedDir = path.join(benchDir, 'results');
const fullRun = !quick && only.length === 0;
const outDir = outArg ? path.resolve(outArg) : !quick && (fullRun || flags.has('--write')) ? committedDir : path.join(committedDir, 'local');

// ---- result files ---------------------------------------------------------------------------
interface ResultFile {
  date: string;
  machine: string;
  /** Median read bandwidth, GB/s (the % read bw column divides by it). */
  readBandwidthGBs: number;
  readBandwidth?: BandwidthStats;
  copyBandwidthGBs?: number;
  copyBandwidth?: BandwidthStats;
  probeBytes?: number;
  threads: number;
  quick?: boolean;
  /** 1-minute load average at the start and the end of the family (the machine may be shared). */
  loadAverage?: [number, number];
  cores?: number;
  elapsedS?: number;
  rows: BenchRow[];
}

type Module = { default: (ctx: BenchContext) => Promise<BenchSection>; chart?: ChartSpec };
const loadModule = async (family: string) => (await import(pathToFileURL(path.join(benchDir, `${family}.bench.ts`)).href)) as Module;

function readResult(dir: string, family: string): ResultFile | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, `${family}.json`), 'utf8')) as ResultFile;
  } catch {
    return null;
  }
}

const ctxOf = (r: ResultFile): BenchContext => ({ readBandwidthGBs: r.readBandwidthGBs, threads: r.threads, quick: !!r.quick });
const tableRows = (r: ResultFile) => r.rows.filter((x) => !x.sweep).map((x) => formatRow(x, ctxOf(r)));

function describeRun(r: ResultFile): string {
  const bw = r.readBandwidth
    ? `read bandwidth ${r.readBandwidth.median.toFixed(1)} GB/s (median of ${r.readBandwidth.samples.length} passes over ` +
      `${((r.probeBytes ?? 0) / 2 ** 20).toFixed(0)} MiB, range ${r.readBandwidth.min.toFixed(1)}–${r.readBandwidth.max.toFixed(1)})`
    : `streaming-read bandwidth ${r.readBandwidthGBs.toFixed(1)} GB/s`;
  const copy = r.copyBandwidth ? `, copy ${r.copyBandwidth.median.toFixed(1)} GB/s (range ${r.copyBandwidth.min.toFixed(1)}–${r.copyBandwidth.max.toFixed(1)})` : '';
  const load = r.loadAverage && r.cores && Math.max(...r.loadAverage) > r.cores
    ? `; **under load**: load average ${r.loadAverage[0].toFixed(1)} → ${r.loadAverage[1].toFixed(1)} on ${r.cores} cores`
    : r.loadAverage ? `; load average ${r.loadAverage[0].toFixed(1)} → ${r.loadAverage[1].toFixed(1)}` : '';
  return `Measured ${r.date.slice(0, 10)} on ${r.machine}; ${bw}${copy}${load}${r.quick ? '; --quick run' : ''}.`;
}

/** latest.md of `dir`: every family's JSON there, with its chart. `imgPrefix` is the charts' path from the Markdown file. */
function latestMarkdown(dir: string, imgPrefix: string): string {
  const fams = fs.readdirSync(dir).filter((f) => f.endsWith('.json') && !f.endsWith('.tmp.json')).map((f) => f.replace('.json', ''))
    .filter((f) => allFiles.includes(`${f}.bench.ts`))
    .sort((a, b) => (a === 'logprobs' ? -1 : b === 'logprobs' ? 1 : a.localeCompare(b)));
  return fams.map((f) => {
    const r = readResult(dir, f)!;
    const img = fs.existsSync(path.join(dir, `${f}.svg`)) ? `![${f} chart](${imgPrefix}${f}.svg)\n\n` : '';
    return `#### ${f}\n\n${describeRun(r)}\n\n${img}${markdownTable(tableRows(r))}`;
  }).join('\n\n') + '\n';
}

function subtitle(r: ResultFile): string {
  const bw = r.readBandwidth
    ? `read bandwidth: median of ${r.readBandwidth.samples.length} passes over ${((r.probeBytes ?? 0) / 2 ** 20).toFixed(0)} MiB, ` +
      `range ${r.readBandwidth.min.toFixed(1)}–${r.readBandwidth.max.toFixed(1)} GB/s`
    : 'read bandwidth: best of the probe passes';
  const load = r.loadAverage && r.cores && Math.max(...r.loadAverage) > r.cores
    ? ` · taken under load (load average ${Math.max(...r.loadAverage).toFixed(1)} on ${r.cores} cores)` : '';
  return `${r.date.slice(0, 10)} · ${r.machine}${r.quick ? ' · --quick' : ''}\n${bw}${load}`;
}

async function writeChart(dir: string, family: string, r: ResultFile, spec?: ChartSpec): Promise<string> {
  const svg = renderChart({
    family, rows: r.rows, spec: spec ?? (await loadModule(family)).chart,
    readGBs: r.readBandwidthGBs, readSpread: r.readBandwidth?.spread, copyGBs: r.copyBandwidthGBs, subtitle: subtitle(r),
  });
  const file = path.join(dir, `${family}.svg`);
  fs.writeFileSync(file, svg);
  return file;
}

function updateReadme(): void {
  const docPath = path.join(benchDir, '..', 'docs', 'benchmarks.md');
  const text = fs.readFileSync(docPath, 'utf8');
  const start = '<!-- bench:start -->', end = '<!-- bench:end -->';
  const a = text.indexOf(start), b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error('docs/benchmarks.md has no <!-- bench:start --> ... <!-- bench:end --> block');
  fs.writeFileSync(docPath, text.slice(0, a + start.length) + '\n' + latestMarkdown(committedDir, '../bench/results/') + text.slice(b));
  process.stderr.write('docs/benchmarks.md results block updated\n');
}

// ---- --charts: redraw from the JSON ---------------------------------------------------------
if (flags.has('--charts')) {
  const dir = outArg ? outDir : committedDir;
  for (const f of files) {
    const r = readResult(dir, familyOf(f));
    if (r) process.stderr.write(`wrote ${path.relative(process.cwd(), await writeChart(dir, familyOf(f), r))}\n`);
  }
  fs.writeFileSync(path.join(dir, 'latest.md'), latestMarkdown(dir, ''));
  if (flags.has('--readme')) updateReadme();
  process.exit(0);
}

// ---- progress on stderr ---------------------------------------------------------------------
const tty = process.stderr.isTTY === true;
const t0 = process.hrtime.bigint();
const secs = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e9;
const clock = (s: number) => (s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`);
let familyStart = t0, familyTag = '', caseLabel = '', ticks = 0, expectS: number | undefined, lastDraw = 0, shown = false;

function status(): string {
  const est = expectS ? ` of ~${clock(expectS)}` : '';
  return `${familyTag}${caseLabel ? ' ' + caseLabel : ''}${ticks ? ` · ${ticks} timed` : ''} · ${clock(secs(familyStart))}${est} · total ${clock(secs(t0))}`;
}
function draw(force = false): void {
  if (!tty) return;
  const now = Date.now();
  if (!force && now - lastDraw < 100) return;
  lastDraw = now;
  const cols = process.stderr.columns || 100;
  const s = status();
  process.stderr.write(`\r\x1b[K${s.length >= cols ? s.slice(0, cols - 2) + '…' : s}`);
  shown = true;
}
function clearLine(): void {
  if (tty && shown) process.stderr.write('\r\x1b[K');
  shown = false;
}
function say(line: string): void {
  clearLine();
  process.stderr.write(line + '\n');
}
setProgressSink((e) => {
  if (e.label !== undefined) {
    caseLabel = e.label;
    if (!tty) say(`${familyTag} ${caseLabel} (${clock(secs(familyStart))}, total ${clock(secs(t0))})`);
  }
  if (e.tick) ticks++;
  draw(e.label !== undefined);
});
function out(text: string): void {
  clearLine();
  process.stdout.write(text);
}

// ---- the run --------------------------------------------------------------------------------
const probeBytes = defaultProbeBytes();
say(`bench: ${files.length} ${files.length === 1 ? 'family' : 'families'} (${files.map(familyOf).join(', ')})${quick ? ', --quick' : ''}; results go to ${path.relative(process.cwd(), outDir) || '.'}/`);
say(`measuring the memory bandwidth (${(probeBytes / 2 ** 20).toFixed(0)} MiB buffer, ${quick ? 5 : 9} passes, read then copy)…`);
const bw = measureBandwidth({ bytes: probeBytes, reps: quick ? 5 : 9, copy: true });
const ctx: BenchContext = {
  readBandwidthGBs: bw.read.median,
  copyBandwidthGBs: bw.copy!.median,
  threads: getNumThreads(),
  quick,
};
const machine = `${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, ` +
  `${ctx.threads} kernel threads, SIMD ${simdLevel().active}, Node ${process.versions.node}`;
const range = (s: BandwidthStats) => `median ${s.median.toFixed(1)} GB/s, range ${s.min.toFixed(1)}–${s.max.toFixed(1)} (spread ${(100 * s.spread).toFixed(0)}%)`;
const header = `${machine}\nread bandwidth: ${range(bw.read)}\ncopy bandwidth: ${range(bw.copy!)} (read + write)\n` +
  (os.loadavg()[0] > os.availableParallelism() ? `load average ${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores: the machine is busy, figures are taken under load\n` : '');
if (format === 'json') say(header.trimEnd());
else out(format === 'markdown' ? header.split('\n').filter(Boolean).map((l) => `${l}  `).join('\n') + '\n\n' : header + '\n');

fs.mkdirSync(outDir, { recursive: true });
const results: Record<string, ResultFile> = {};
for (const [i, f] of files.entries()) {
  const family = familyOf(f);
  const prev = readResult(outDir, family) ?? readResult(committedDir, family);
  familyStart = process.hrtime.bigint();
  familyTag = `[${i + 1}/${files.length} ${family}]`;
  caseLabel = '';
  ticks = 0;
  expectS = prev && !!prev.quick === quick ? prev.elapsedS : undefined;
  say(`${familyTag} starting${expectS ? ` (last run ${clock(expectS)})` : ''}`);
  const load0 = os.loadavg()[0];
  const mod = await loadModule(family);
  draw(true);
  const section = await mod.default(ctx);
  const elapsedS = secs(familyStart);
  const r: ResultFile = {
    date: new Date().toISOString(), machine,
    readBandwidthGBs: bw.read.median, readBandwidth: bw.read,
    copyBandwidthGBs: bw.copy!.median, copyBandwidth: bw.copy,
    probeBytes: bw.bytes, threads: ctx.threads, quick,
    loadAverage: [+load0.toFixed(2), +os.loadavg()[0].toFixed(2)], cores: os.availableParallelism(),
    elapsedS: +elapsedS.toFixed(1), rows: section.rows,
  };
  results[section.family] = r;
  fs.writeFileSync(path.join(outDir, `${section.family}.json`), JSON.stringify(r, null, 2) + '\n');
  await writeChart(outDir, section.family, r, section.chart ?? mod.chart);
  say(`${familyTag} done: ${section.rows.length} rows in ${clock(elapsedS)}`);
  if (format === 'text') out(`== ${section.family} ==\n${textTable(tableRows(r))}\n\n`);
  else if (format === 'markdown') out(`## ${section.family}\n\n${markdownTable(tableRows(r))}\n\n`);
}
setProgressSink(null);

fs.writeFileSync(path.join(outDir, 'latest.md'), latestMarkdown(outDir, ''));
if (format === 'json') {
  out(JSON.stringify({ machine, bandwidth: bw, families: results }, null, 2) + '\n');
}
if (flags.has('--readme')) updateReadme();
say(`bench: done in ${clock(secs(t0))}; wrote ${files.map((f) => familyOf(f) + '.{json,svg}').join(', ')} and latest.md in ${path.relative(process.cwd(), outDir) || '.'}/`);
