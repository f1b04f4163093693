// The benchmark tooling: the bandwidth probe (its statistics and argument checks), the SVG charts
// and tables of bench/, and bench/run.ts's handling of result directories. No speed is asserted.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultProbeBytes, getNumThreads, lastLevelCacheBytes, measureBandwidth, measureExpThroughput, measureReadBandwidth, setNumThreads, setSimdLevel, simdLevel, defaultNumThreads } from '../lib/index.js';
import { formatCount, linearTicks, renderChart, shapeKeys } from '../bench/chart.js';
import { textTable, type BenchRow } from '../bench/harness.js';

const MiB = 2 ** 20;
const root = path.resolve(__dirname, '..');

/** A probe's statistics: `reps` positive passes, their median (odd counts), range and spread. */
function expectStats(s: { samples: number[]; median: number; min: number; max: number; spread: number }, reps: number) {
  expect(s.samples).toHaveLength(reps);
  for (const x of s.samples) expect(x).toBeGreaterThan(0);
  const sorted = [...s.samples].sort((a, b) => a - b);
  const mid = sorted[(reps - 1) / 2];
  expect(s.median).toBe(mid);
  expect(s.min).toBe(sorted[0]);
  expect(s.max).toBe(sorted[reps - 1]);
  expect(s.spread).toBeCloseTo((sorted[reps - 1] - sorted[0]) / mid, 12);
}

describe('exp throughput probe', () => {
  it('returns every pass, their median, range and spread, the SIMD level and thread count it ran with', () => {
    const { active } = simdLevel();
    try {
      for (const [level, threads] of [[active, getNumThreads()], ['scalar', 1]] as const) {
        setSimdLevel(level);
        setNumThreads(threads);
        const m = measureExpThroughput({ reps: 3 });
        expect(m.simd).toBe(level);
        expect(m.threads).toBe(threads);
        expectStats(m, 3);
      }
      expect(measureExpThroughput().samples).toHaveLength(9);
    } finally {
      setSimdLevel(active);
      setNumThreads(defaultNumThreads());
    }
  });

  it('names the bad argument', () => {
    expect(() => measureExpThroughput({ rep: 3 } as never)).toThrow(/rep.*reps/);
    expect(() => measureExpThroughput({ rep: 3 } as never)).toThrow(TypeError);
    expect(() => measureExpThroughput({ reps: 0 })).toThrow(new RangeError('reps: expected an integer in [1, 1000], received 0'));
    expect(() => measureExpThroughput({ reps: 1.5 })).toThrow(new RangeError('reps: expected an integer in [1, 1000], received 1.5'));
    expect(() => measureExpThroughput(3 as never)).toThrow(TypeError);
  });
});

describe('bandwidth probe', () => {
  it('returns every pass, their median, range and spread, for read and copy', () => {
    const m = measureBandwidth({ bytes: 8 * MiB, reps: 5, copy: true });
    expect(m.bytes).toBe(8 * MiB);
    for (const s of [m.read, m.copy!]) expectStats(s, 5);
    expect(measureBandwidth({ bytes: 4 * MiB, reps: 2 }).copy).toBeUndefined();
    expect(measureReadBandwidth(4 * MiB, 3)).toBeGreaterThan(0);
  });

  it('names the bad argument', () => {
    expect(() => measureBandwidth({ byts: MiB } as never)).toThrow(TypeError);
    expect(() => measureBandwidth({ byts: MiB } as never)).toThrow(/byts.*bytes/);
    expect(() => measureBandwidth({ bytes: 1000 })).toThrow(new RangeError('bytes: expected an integer in [1048576, 17179869184], received 1000'));
    expect(() => measureBandwidth({ reps: 0 })).toThrow(new RangeError('reps: expected an integer in [1, 1000], received 0'));
    expect(() => measureBandwidth({ copy: 1 as never })).toThrow(new TypeError('copy: expected a boolean, received number 1'));
    expect(() => measureBandwidth([] as never)).toThrow(TypeError);
    expect(() => measureReadBandwidth(2.5)).toThrow(/^bytes: expected an integer/);
  });

  it('sizes its buffer from the L3 cache read in /sys', () => {
    const dir = '/sys/devices/system/cpu/cpu0/cache';
    let l3: number | null = null;
    if (fs.existsSync(dir)) {
      for (const d of fs.readdirSync(dir).filter((x) => x.startsWith('index'))) {
        if (fs.readFileSync(`${dir}/${d}/level`, 'utf8').trim() !== '3') continue;
        const m = /^(\d+)K$/.exec(fs.readFileSync(`${dir}/${d}/size`, 'utf8').trim());
        if (m) l3 = Math.max(l3 ?? 0, Number(m[1]) * 1024);
      }
    }
    expect(lastLevelCacheBytes()).toBe(l3);
    const b = defaultProbeBytes();
    expect(b % MiB).toBe(0);
    const cap = Math.min(4 * 1024 * MiB, os.totalmem() / 8);
    const want = l3 === null ? 1024 * MiB : Math.max(4 * l3, 512 * MiB);
    expect(b).toBe(Math.floor(Math.min(want, cap) / MiB) * MiB);
  });
});

describe('charts', () => {
  const row = (op: string, shape: string, impl: string, ms: number, bytes?: number, elements?: number): BenchRow =>
    ({ op, shape, impl, ms, bytes, elements });

  it('parses shapes, formats counts, picks round ticks', () => {
    expect(shapeKeys('N=256 V=32000 f32')).toEqual({ N: 256, V: 32000 });
    expect(shapeKeys('n=64 G=16 grpo')).toEqual({ n: 64, G: 16 });
    expect([4096, 32000, 151936, 1048576, 64].map(formatCount)).toEqual(['4.1k', '32k', '152k', '1.05M', '64']);
    expect(linearTicks(17.3)).toEqual([0, 5, 10, 15, 20]);
    expect(linearTicks(0.9)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  it('draws lines against the varying size, with the bandwidth lines and a legend', () => {
    const rows = [
      row('forward', 'N=8 V=1000 f32', 'reward-kernels', 1, 4e6),
      row('forward', 'N=8 V=10000 f32', 'reward-kernels', 2, 4e7),
      row('forward', 'N=8 V=1000 bf16', 'reward-kernels', 1, 2e6),
      row('forward', 'N=8 V=10000 bf16', 'reward-kernels', 4, 2e7),
      row('forward', 'N=8 V=10000 f32', 'peer <x> & "y"', 8, 4e7),
      row('forward', 'N=8 V=1000 f32', 'failed peer', NaN),
    ];
    const svg = renderChart({ family: 'fam', rows, readGBs: 15, readSpread: 0.05, copyGBs: 12, subtitle: 'a\nb' });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('fam: GB/s against V');
    expect(svg.match(/<polyline /g)).toHaveLength(2); // the two series with two points
    expect(svg.match(/<circle /g)!.length).toBe(5 + 3); // points + legend markers
    expect(svg).toContain('forward f32 · reward-kernels');
    expect(svg).toContain('peer &lt;x&gt; &amp; &quot;y&quot;');
    expect(svg).not.toContain('failed peer');
    expect(svg).toContain('read bandwidth 15.0 GB/s (median, spread 5%)');
    expect(svg).toContain('copy bandwidth 12.0 GB/s (read + write)');
    expect(svg).toContain('>1k<');
    expect(svg).toContain('>10k<');
    // 4e7 B in 2 ms = 20 GB/s: the y axis goes to 25
    expect(svg).toContain('>25<');
  });

  it('draws bars when every row has the same shape; follows the spec', () => {
    const rows = [
      row('a', 'B=4 T=8', 'reward-kernels', 0.001, undefined, 32),
      row('a', 'B=4 T=8', 'pure TS', 0.004, undefined, 32),
    ];
    const svg = renderChart({ family: 'f', rows, readGBs: 10, spec: { metric: 'Mcalls/s', title: 'T', series: (r) => `[${r.impl}]` } });
    expect(svg.match(/<rect x=/g)).toHaveLength(2); // the two bars (the background has no x)
    expect(svg).toContain('>[reward-kernels]<');
    expect(svg).toContain('>1<'); // 1 M calls/s
    expect(svg).toContain('>0.25<');
    expect(svg).not.toContain('read bandwidth'); // not a GB/s chart
    // the sweep rows alone are drawn when there are any
    const swept = renderChart({
      family: 'f', readGBs: 10,
      rows: [row('x', 'V=10', 'r', 1, 1e6), { ...row('s', 'V=10', 'r', 1, 1e6), sweep: 'V' }, { ...row('s', 'V=100', 'r', 1, 1e7), sweep: 'V' }],
    });
    expect(swept).toContain('s · r');
    expect(swept).not.toContain('x · r');
  });

  it('prints aligned text tables: numbers right-aligned, text left-aligned', () => {
    const t = textTable([['forward', '1.5 ms', ''], ['backward (lse)', '12.25 ms', 'note']], ['op', 'median', 'note']);
    expect(t.split('\n')).toEqual([
      'op                median  note',
      '--------------  --------  ----',
      'forward           1.5 ms',
      'backward (lse)  12.25 ms  note',
    ]);
  });
});

describe('bench/run.ts', () => {
  const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
  it('refuses --quick --write and unknown options, before measuring anything', () => {
    const a = spawnSync(tsx, ['bench/run.ts', '--quick', '--write'], { cwd: root, encoding: 'utf8' });
    expect(a.status).toBe(2);
    expect(a.stderr).toContain('--quick results are never written to bench/results/');
    const b = spawnSync(tsx, ['bench/run.ts', '--frobnicate'], { cwd: root, encoding: 'utf8' });
    expect(b.status).toBe(2);
    expect(b.stderr).toContain('unknown option --frobnicate');
    const c = spawnSync(tsx, ['bench/run.ts', 'nosuchfamily'], { cwd: root, encoding: 'utf8' });
    expect(c.status).toBe(2);
    expect(c.stderr).toContain("no family 'nosuchfamily'");
  });

  it('--charts --out redraws charts and latest.md from JSON results there, running nothing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rk-bench-'));
    const result = {
      date: '2026-01-02T03:04:05.000Z', machine: 'test machine', readBandwidthGBs: 20, threads: 2, quick: true,
      readBandwidth: { median: 20, min: 19, max: 22, spread: 0.15, samples: [19, 20, 22] }, probeBytes: 1024 * MiB,
      loadAverage: [5, 6], cores: 2,
      rows: [
        { op: 'preferenceLoss sigmoid', shape: 'P=8', impl: 'reward-kernels', ms: 0.001, elements: 8, bytes: 288 },
        { op: 'preferenceLoss sigmoid', shape: 'P=1024', impl: 'reward-kernels', ms: 0.01, elements: 1024, bytes: 36864 },
      ],
    };
    fs.writeFileSync(path.join(dir, 'preference.json'), JSON.stringify(result));
    execFileSync(tsx, ['bench/run.ts', 'preference', '--charts', '--out', dir], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    const svg = fs.readFileSync(path.join(dir, 'preference.svg'), 'utf8');
    expect(svg).toContain('preferenceLoss (sigmoid = DPO, simpo): pairs per second against P');
    expect(svg).toContain('taken under load (load average 6.0 on 2 cores)');
    const md = fs.readFileSync(path.join(dir, 'latest.md'), 'utf8');
    expect(md).toContain('![preference chart](preference.svg)');
    expect(md).toContain('median of 3 passes over 1024 MiB, range 19.0–22.0');
    expect(md).toContain('**under load**');
    expect(md).toContain('| preferenceLoss sigmoid | P=8 | reward-kernels | 1.00 us |');
    fs.rmSync(dir, { recursive: true });
  });
});
