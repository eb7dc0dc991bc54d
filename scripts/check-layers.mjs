#!/usr/bin/env node
// Keeps the layer directions of DESIGN.md: every import between src/<layer>/ folders must point
// down. Exits 1 and names each offending import otherwise.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const src = join(root, 'src');
// Which layers each layer may import (besides itself).
const ALLOWED = {
  model: [],
  analysis: ['model'],
  store: ['analysis', 'model'],
  probe: ['analysis', 'model'],
  lab: ['probe', 'analysis', 'model'],
  server: ['store', 'probe', 'analysis', 'model'],
  cli: ['server', 'lab', 'probe', 'store', 'analysis', 'model'],
  // Test support: only tests import it (checked below); it may use any layer.
  testing: ['cli', 'server', 'lab', 'probe', 'store', 'analysis', 'model'],
};

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.(ts|tsx|mts)$/.test(name)) yield p;
  }
}

const problems = [];
for (const file of files(src)) {
  const layer = relative(src, file).split(sep)[0];
  if (!(layer in ALLOWED)) {
    problems.push(`${relative(root, file)}: not inside a known layer folder (${Object.keys(ALLOWED).join(', ')})`);
    continue;
  }
  const text = readFileSync(file, 'utf8');
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec);
    if (!target.startsWith(src + sep)) {
      problems.push(`${relative(root, file)}: imports ${spec}, outside src/`);
      continue;
    }
    const to = relative(src, target).split(sep)[0];
    if (to === 'testing' && to !== layer) {
      if (!/\.test\.tsx?$/.test(file)) problems.push(`${relative(root, file)}: only tests may import test support (${spec})`);
      continue;
    }
    if (to !== layer && !ALLOWED[layer].includes(to)) {
      problems.push(`${relative(root, file)}: layer '${layer}' may not import '${to}' (${spec})`);
    }
  }
}
if (problems.length) {
  console.error('layer check failed:\n  ' + problems.join('\n  '));
  process.exit(1);
}
console.log('layer check: ok');
