// How to run this very `wallscope` again, for the commands we print (`lab up`'s measure line, the
// resume and upload hints): `wallscope` when that name on the PATH is this checkout's bin (after
// `npm link`), else `node /absolute/path/bin/wallscope.js`, which works as printed from any folder.
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { repoRoot } from '../probe/paths.js';

let cached: string | undefined;

export function wallscopeCommand(): string {
  if (cached !== undefined) return cached;
  const bin = join(repoRoot, 'bin', 'wallscope.js');
  cached = onPath(bin) ? 'wallscope' : `node ${/^[\w./-]+$/.test(bin) ? bin : `'${bin.replace(/'/g, `'\\''`)}'`}`;
  return cached;
}

function onPath(bin: string): boolean {
  let want: string;
  try {
    want = realpathSync(bin);
  } catch {
    return false;
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, 'wallscope');
    try {
      if (existsSync(p) && realpathSync(p) === want) return true;
    } catch {
      /* a dangling link: not ours */
    }
  }
  return false;
}
