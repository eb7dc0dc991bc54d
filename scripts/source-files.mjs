// The source files the repository scripts read (check-layers.mjs, longest-functions.mjs): every
// .ts/.tsx/.js file under a folder, without node_modules, dist/ and dot-folders.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function* sourceFiles(dir, re = /\.(ts|tsx|mts|cts|js|mjs|jsx)$/) {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sourceFiles(p, re);
    else if (re.test(name) && !/\.d\.ts$/.test(name)) yield p;
  }
}
