#!/usr/bin/env node
// Checks that every file a repository file refers to exists in the repository.
//
//   node scripts/check-refs.mjs          # exit 0: "check-refs: N references, all resolve"
//                                        # exit 1: one "file:line: missing <path> (<as written>)" per miss
//
// It reads the files git knows (tracked, plus untracked ones that are not ignored), except
// package-lock.json, bench/results/ and binary files, and looks for:
//   - paths under the repository's top-level folders (docs, lib, native, cuda, scripts, tests,
//     bench, .ci): a folder name, a slash and a file name, also in ./ and ../ forms and with
//     brace lists of extensions; an import of a .js file is satisfied by its .ts source;
//   - the names of notes kept outside the repository (NOTE_NAMES below, *.md): a repository file
//     must not send its reader to a file that the repository does not hold;
//   - Markdown links [text](path#anchor) in .md files: the path must exist (relative to the
//     Markdown file) and, for a .md target, the anchor must be one of its headings (GitHub slugs).
// A path resolves against the repository root first, then against the referring file's folder.
// No dependencies; Node 20 or newer.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const git = (...args) => execFileSync('git', args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
const files = [...new Set([
  ...git('ls-files', '-z').split('\0'),
  ...git('ls-files', '-z', '--others', '--exclude-standard').split('\0'),
])].filter((f) => f && fs.existsSync(path.join(root, f)));

// What exists: the files and every folder above them.
const known = new Set(files);
for (const f of files) for (let d = path.posix.dirname(f); d !== '.'; d = path.posix.dirname(d)) known.add(d);
const basenames = new Set(files.map((f) => path.posix.basename(f)));
const exists = (p) => known.has(p.replace(/\/+$/, ''));

const self = path.relative(root, fileURLToPath(import.meta.url)).split(path.sep).join('/');
const skipped = (f) => f === 'package-lock.json' || f.startsWith('bench/results/') || f === self;

const DIRS = '(?:docs|lib|native|cuda|scripts|tests|bench|\\.ci)';
const EXT = '(?:md|ts|mts|mjs|cjs|js|json|h|hpp|cc|cpp|cu|cuh|inl|sh|py|txt)';
// A path under a top-level folder, not preceded by a path character (so a path nested under another
// folder is not taken for a top-level one), ending in a known extension or a brace list of extensions.
const PATH_RE = new RegExp(
  `(?<![\\w./@-])((?:\\.\\.?/)*${DIRS}/[\\w.\\-/]*?[\\w-])\\.(${EXT}|\\{[\\w,]+\\})(?![\\w])`, 'g');
const NOTE_NAMES = ['KERNELS', 'ARCHITECTURE', 'DEVELOPERS'];
const NOTE_RE = new RegExp(`(?<![\\w./-])((?:${NOTE_NAMES.join('|')})\\.md)\\b`, 'g');
const LINK_RE = /\[[^\]\n]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;

/** GitHub's heading anchors of a Markdown text. */
const slugCache = new Map();
function anchorsOf(file) {
  if (slugCache.has(file)) return slugCache.get(file);
  const seen = new Map();
  const out = new Set();
  let fence = false;
  for (const line of fs.readFileSync(path.join(root, file), 'utf8').split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    const m = !fence && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const text = m[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    let slug = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    if (n > 0) slug = `${slug}-${n}`;
    out.add(slug);
  }
  for (const m of fs.readFileSync(path.join(root, file), 'utf8').matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) out.add(m[1]);
  slugCache.set(file, out);
  return out;
}

/** The repository path a reference resolves to, or null. */
function resolve(ref, from) {
  const dir = path.posix.dirname(from);
  const candidates = ref.startsWith('./') || ref.startsWith('../')
    ? [path.posix.normalize(path.posix.join(dir, ref))]
    : [path.posix.normalize(ref), path.posix.normalize(path.posix.join(dir, ref))];
  for (const c of candidates) {
    if (c.startsWith('..')) continue;
    if (exists(c)) return c;
    if (c.endsWith('.js') && exists(c.slice(0, -3) + '.ts')) return c.slice(0, -3) + '.ts';
  }
  return null;
}

let count = 0;
const problems = [];
for (const file of files) {
  if (skipped(file)) continue;
  const buf = fs.readFileSync(path.join(root, file));
  if (buf.includes(0)) continue; // binary
  const lines = buf.toString('utf8').split('\n');
  const isMd = file.endsWith('.md');
  lines.forEach((line, i) => {
    const where = `${file}:${i + 1}`;
    const seen = new Set();
    const reported = new Set();
    const check = (ref, written, test) => {
      const key = `${ref}\0${written}`;
      if (seen.has(key)) return;
      seen.add(key);
      count++;
      const why = test();
      if (why && !reported.has(why)) problems.push(`${where}: ${why} (${written})`);
      if (why) reported.add(why);
    };
    for (const m of line.matchAll(PATH_RE)) {
      const [written, stem, ext] = m;
      const exts = ext.startsWith('{') ? ext.slice(1, -1).split(',') : [ext];
      for (const e of exts) {
        const ref = `${stem}.${e}`;
        check(ref, written, () => (resolve(ref, file) ? null : `missing ${ref}`));
      }
    }
    for (const m of line.matchAll(NOTE_RE)) {
      const ref = m[1];
      check(ref, ref, () => (resolve(ref, file) || basenames.has(ref) ? null : `missing ${ref} (not in the repository)`));
    }
    if (!isMd) return;
    for (const m of line.matchAll(LINK_RE)) {
      const target = m[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:, ...
      const hash = target.indexOf('#');
      const p = decodeURI(hash < 0 ? target : target.slice(0, hash));
      const anchor = hash < 0 ? '' : decodeURIComponent(target.slice(hash + 1));
      check(target, m[0], () => {
        const to = p === '' ? file : resolve(p.startsWith('/') ? p.slice(1) : p.startsWith('.') ? p : `./${p}`, file);
        if (!to) return `missing ${path.posix.normalize(path.posix.join(path.posix.dirname(file), p))}`;
        if (anchor && to.endsWith('.md') && !anchorsOf(to).has(anchor.toLowerCase())) return `no heading #${anchor} in ${to}`;
        return null;
      });
    }
  });
}

if (problems.length) {
  for (const p of problems) console.log(p);
  console.log(`check-refs: ${count} references, ${problems.length} do not resolve`);
  process.exit(1);
}
console.log(`check-refs: ${count} references, all resolve`);
