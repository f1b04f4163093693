// Repository invariants: the files generated from the op descriptors are current, and every file a
// source or doc cites exists in the repository (npm users only have what ships).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { generated } from '../scripts/gen-layout.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('repository', () => {
  it('the files generated from the op descriptors are current (npx tsx scripts/gen-layout.ts)', () => {
    const files = generated();
    expect(Object.keys(files).length).toBeGreaterThanOrEqual(5);
    for (const [rel, text] of Object.entries(files)) {
      expect(fs.readFileSync(path.join(root, rel), 'utf8'), rel).toBe(text);
    }
  });

  it('every file a source comment or a doc cites exists (scripts/check-refs.mjs)', () => {
    const out = execFileSync(process.execPath, [path.join(root, 'scripts', 'check-refs.mjs')], { cwd: root, encoding: 'utf8' });
    expect(out).toMatch(/check-refs: \d+ references, all resolve/);
  });
});
