// Writes native/binding/layout.gen.h from the op descriptors (lib/op.ts registry): for every op, the
// index of each slot, packed param and scalar result, and the names of each enum option in code
// order. The C++ decoders (native/binding/ops/) read these names, never hand-counted indices.
//
//   npx tsx scripts/gen-layout.ts           rewrite the header
//   npx tsx scripts/gen-layout.ts --check   exit 1 when the committed header is stale (a test runs this)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { layoutHeader } from '../lib/layout.js';

const target = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', 'binding', 'layout.gen.h');
const text = layoutHeader();
if (process.argv.includes('--check')) {
  const have = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
  if (have !== text) {
    console.error(`${target} is stale: run npx tsx scripts/gen-layout.ts`);
    process.exit(1);
  }
  console.log('layout.gen.h is current');
} else {
  fs.writeFileSync(target, text);
  console.log(`wrote ${target}`);
}
