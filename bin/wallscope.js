#!/usr/bin/env node
// The `wallscope` command. The TypeScript sources are compiled to dist/ by `npm run build`
// (scripts/setup.sh runs it); this file only loads the compiled CLI.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('wallscope: not built yet. Run `npm run setup` (or `npm run build`) first.\n');
  process.exit(2);
}
await import(main.href);
