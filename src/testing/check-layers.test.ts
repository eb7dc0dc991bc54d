// scripts/check-layers.mjs bites: each kind of forbidden import (every import form, the purity of
// analysis/ and model/, test support in production, web/ reaching into the server side) is planted
// alone in a temporary copy of the layer folders, and the check must fail naming file:line and the
// rule; the same tree without the plant passes. The real repository passes too.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { repoRoot } from '../probe/index.js';

const SCRIPT = join(repoRoot, 'scripts', 'check-layers.mjs');

// A small, clean tree: one file per layer, each importing only what the arrows allow.
const CLEAN: Record<string, string> = {
  'src/model/index.ts': 'export const m = 1;\n',
  'src/analysis/index.ts':
    "import { m } from '../model/index.js';\nimport ipaddr from 'ipaddr.js';\nexport const a = m + Number(ipaddr.isValid('1.2.3.4'));\nexport const t = (now: number) => new Date(now).toISOString();\n",
  'src/store/index.ts':
    "import { m } from '../model/index.js';\nimport { readFileSync } from 'node:fs';\nexport const s = m;\nexport const r = readFileSync;\n",
  'src/probe/index.ts': "import { a } from '../analysis/index.js';\nexport const p = a;\nexport const clock = () => Date.now();\n",
  'src/lab/index.ts': "import { p } from '../probe/index.js';\nimport { a } from '../analysis/index.js';\nexport const l = p + a;\n",
  'src/server/index.ts': "import { s } from '../store/index.js';\nimport { a } from '../analysis/index.js';\nexport const v = s + a;\n",
  'src/cli/main.ts':
    "const table = { lab: () => import('../lab/index.js'), serve: () => import('../server/index.js') };\nexport default table;\n",
  'src/testing/support.ts': "import { v } from '../server/index.js';\nimport { l } from '../lab/index.js';\nexport const h = v + l;\n",
  'src/server/index.test.ts':
    "import { h } from '../testing/support.js';\nimport { p } from '../probe/index.js';\nexport const x = h + p;\n",
  'web/src/api.ts': "import { m } from '../../src/model/index.js';\nexport const w = m;\n",
  'bench/run.ts': "import { h } from '../src/testing/support.js';\nimport { w } from '../web/src/api.js';\nexport const b = h + w;\n",
};

interface Plant {
  name: string;
  file: string;
  code: string;
  expect: RegExp;
}
const PLANTS: Plant[] = [
  {
    name: 'static import up the arrows (store -> analysis)',
    file: 'src/store/bad.ts',
    code: "import { a } from '../analysis/index.js';\nexport const x = a;\n",
    expect: /src\/store\/bad\.ts:1: layer 'store' may not import 'analysis' \(import '\.\.\/analysis\/index\.js'\)/,
  },
  {
    name: 'side-effect import (server -> probe)',
    file: 'src/server/bad.ts',
    code: "// a comment\nimport '../probe/index.js';\n",
    expect: /src\/server\/bad\.ts:2: layer 'server' may not import 'probe' \(import '\.\.\/probe\/index\.js'\)/,
  },
  {
    name: 'export ... from (probe -> lab)',
    file: 'src/probe/bad.ts',
    code: "export { l } from '../lab/index.js';\n",
    expect: /src\/probe\/bad\.ts:1: layer 'probe' may not import 'lab' \(export from/,
  },
  {
    name: 'export * from (analysis -> store)',
    file: 'src/analysis/bad.ts',
    code: "export * from '../store/index.js';\n",
    expect: /src\/analysis\/bad\.ts:1: layer 'analysis' may not import 'store'/,
  },
  {
    name: 'dynamic import() (store -> server)',
    file: 'src/store/bad.ts',
    code: "export const load = () => import('../server/index.js');\n",
    expect: /src\/store\/bad\.ts:1: layer 'store' may not import 'server' \(import\(\)/,
  },
  {
    name: 'dynamic import() of a template string (lab -> cli)',
    file: 'src/lab/bad.ts',
    code: 'export const load = (n: string) => import(`../cli/${n}.js`);\n',
    expect: /src\/lab\/bad\.ts:1: layer 'lab' may not import 'cli' \(import\(\) \(template\)/,
  },
  {
    name: 'dynamic import() of a variable',
    file: 'src/probe/bad.ts',
    code: 'export const load = (n: string) => import(n);\n',
    expect: /src\/probe\/bad\.ts:1: import\(\) with a specifier that is not a literal/,
  },
  {
    name: 'require() (model -> probe)',
    file: 'src/model/bad.ts',
    code: "declare const require: (s: string) => unknown;\nexport const p = require('../probe/index.js');\n",
    expect: /src\/model\/bad\.ts:2: layer 'model' may not import 'probe' \(require\(\)/,
  },
  {
    name: 'createRequire()() inline (probe -> server)',
    file: 'src/probe/bad.ts',
    code: "import { createRequire } from 'node:module';\nexport const s = createRequire(import.meta.url)('../server/index.js');\n",
    expect: /src\/probe\/bad\.ts:2: layer 'probe' may not import 'server' \(createRequire\(\)\(\)/,
  },
  {
    name: 'createRequire() bound to a name (lab -> server)',
    file: 'src/lab/bad.ts',
    code: "import { createRequire } from 'node:module';\nconst req = createRequire(import.meta.url);\nexport const s = req('../server/index.js');\n",
    expect: /src\/lab\/bad\.ts:3: layer 'lab' may not import 'server' \(createRequire\(\)\(\)/,
  },
  {
    name: 'import type in a type position (analysis -> probe)',
    file: 'src/analysis/bad.ts',
    code: "export type P = typeof import('../probe/index.js').p;\n",
    expect: /src\/analysis\/bad\.ts:1: layer 'analysis' may not import 'probe' \(import\(\) type/,
  },
  {
    name: 'production code imports test support',
    file: 'src/server/bad.ts',
    code: "import { h } from '../testing/support.js';\nexport const x = h;\n",
    expect: /src\/server\/bad\.ts:1: layer 'server' may not import 'testing' .*test support may be imported only by tests and bench/,
  },
  {
    name: 'production code imports bench/',
    file: 'src/cli/bad.ts',
    code: "import { b } from '../../bench/run.js';\nexport const x = b;\n",
    expect: /src\/cli\/bad\.ts:1: layer 'cli' may not import 'bench'/,
  },
  {
    name: 'web/ imports the server side',
    file: 'web/src/bad.ts',
    code: "import { s } from '../../src/store/index.js';\nexport const x = s;\n",
    expect: /web\/src\/bad\.ts:1: layer 'web' may not import 'store' .*web\/ may import only src\/model/,
  },
  {
    name: 'src/ imports web/ sources',
    file: 'src/server/bad.ts',
    code: "import { w } from '../../web/src/api.js';\nexport const x = w;\n",
    expect: /src\/server\/bad\.ts:1: layer 'server' may not import 'web'/,
  },
  {
    name: 'analysis imports node:fs',
    file: 'src/analysis/bad.ts',
    code: "import { readFileSync } from 'node:fs';\nexport const r = readFileSync;\n",
    expect: /src\/analysis\/bad\.ts:1: 'analysis' is pure \(no I\/O, no clock\) but import 'node:fs'/,
  },
  {
    name: 'model imports net without the node: prefix',
    file: 'src/model/bad.ts',
    code: "import net from 'net';\nexport const n = net;\n",
    expect: /src\/model\/bad\.ts:1: 'model' is pure .* but import 'net'/,
  },
  {
    name: 'analysis imports node:module (createRequire)',
    file: 'src/analysis/bad.ts',
    code: "import { createRequire } from 'node:module';\n",
    expect: /src\/analysis\/bad\.ts:1: 'analysis' is pure .* but import 'node:module'/,
  },
  {
    name: 'analysis imports an I/O package',
    file: 'src/analysis/bad.ts',
    code: "import Database from 'better-sqlite3';\nexport const d = Database;\n",
    expect: /'analysis' is pure .* but import 'better-sqlite3'/,
  },
  {
    name: 'analysis reads Date.now()',
    file: 'src/analysis/bad.ts',
    code: 'export const t = () => Date.now();\n',
    expect: /src\/analysis\/bad\.ts:1: 'analysis' is pure .* but reads Date\.now/,
  },
  {
    name: 'model reads new Date()',
    file: 'src/model/bad.ts',
    code: 'export const t = () =>\n  new Date().toISOString();\n',
    expect: /src\/model\/bad\.ts:2: 'model' is pure .* but reads new Date\(\)/,
  },
  {
    name: 'analysis reads performance.now()',
    file: 'src/analysis/bad.ts',
    code: 'export const t = () => performance.now();\n',
    expect: /'analysis' is pure .* but reads performance\.now/,
  },
  {
    name: 'analysis reads process.env',
    file: 'src/analysis/bad.ts',
    code: 'export const t = () => process.env.HOME;\n',
    expect: /'analysis' is pure .* but reads process\.env/,
  },
  {
    name: 'a file outside the layer folders',
    file: 'src/util/bad.ts',
    code: 'export const x = 1;\n',
    expect: /src\/util\/bad\.ts: not inside a known layer folder/,
  },
];

function plantTree(dir: string, extra?: Plant): void {
  for (const [file, code] of Object.entries(CLEAN)) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), code);
  }
  if (extra) {
    mkdirSync(dirname(join(dir, extra.file)), { recursive: true });
    writeFileSync(join(dir, extra.file), extra.code);
  }
}

function check(dir: string): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [SCRIPT, dir], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe('scripts/check-layers.mjs', () => {
  let base: string;
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'wallscope-layers-'));
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  it('passes the clean tree (every allowed arrow, clock and fs outside analysis/model, tests and bench above all)', () => {
    const dir = join(base, 'clean');
    plantTree(dir);
    const r = check(dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /layer check: ok \(11 files\)/);
  });

  for (const [i, plant] of PLANTS.entries()) {
    it(`fails on ${plant.name}`, () => {
      const dir = join(base, `plant-${i}`);
      plantTree(dir, plant);
      const r = check(dir);
      assert.equal(r.status, 1, `expected a failure, got ${r.status}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^layer check failed \(1\):/, r.stderr);
      assert.match(r.stderr, plant.expect);
    });
  }

  it('passes on this repository', () => {
    const r = check(repoRoot);
    assert.equal(r.status, 0, r.stderr);
  });
});
