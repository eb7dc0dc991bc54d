// Where the project and the shared fixtures live. Computed from this file's location, so it
// works from src/ (tsx) and dist/src/ (compiled) alike. It reads the file system and the
// environment, so it is not in model/ (pure); the probe is the lowest layer that the cli and the
// lab both reach. The server takes its paths (webRoot) from its caller.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'src', 'model'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`wallscope: cannot find the project root above ${start}`);
    dir = up;
  }
}

export const repoRoot: string = findRoot(dirname(fileURLToPath(import.meta.url)));
/** ../shared beside the checkout, or WALLSCOPE_SHARED. */
export const sharedDir: string = resolve(process.env.WALLSCOPE_SHARED ?? join(repoRoot, '..', 'shared'));
export const fixturesDir: string = join(sharedDir, 'fixtures');
