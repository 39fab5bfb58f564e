// The first load's size budget: everything a first visit fetches (the page,
// its script and style, the engine worker, the wasm, the service worker),
// gzipped as `hypergolix serve --www` sends them, must stay within 400 KB.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const BUDGET = 400 * 1000;
const dist = fileURLToPath(new URL('../dist', import.meta.url));

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else yield p;
  }
}

const all = [...files(dist)];
const gz = all.filter((f) => f.endsWith('.gz'));
const plain = all.filter((f) => !f.endsWith('.gz'));
if (gz.length === 0) throw new Error(`no .gz files in ${dist}: build first (npm run build)`);
const missing = plain.filter((f) => /\.(js|css|wasm|html)$/.test(f) && !gz.includes(`${f}.gz`));
if (missing.length) throw new Error(`not precompressed: ${missing.map((f) => relative(dist, f)).join(', ')}`);
let total = 0;
for (const f of gz) {
  const n = statSync(f).size;
  total += n;
  console.log(`${String(n).padStart(8)}  ${relative(dist, f)}`);
}
console.log(`${String(total).padStart(8)}  total gzipped (budget ${BUDGET})`);
if (total > BUDGET) {
  console.error(`the first load is ${total} bytes gzipped, over the ${BUDGET}-byte budget`);
  process.exit(1);
}
