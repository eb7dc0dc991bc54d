#!/usr/bin/env node
// The layer check: keeps the architecture of README.md ("Architecture") and docs/ARCHITECTURE.md,
// which restate the layers of ../shared/DESIGN.md ("Layers"). Over src/, web/ and bench/ it finds
// every import (static, side-effect `import 'x'`, `export ... from`, `import x = require()`,
// `import('x')` including template strings, `import('x').T` in types, `require()`, the function
// that `createRequire()` returns, `require.resolve()`), and fails with one line per problem:
//   - an import between layers that does not follow the arrows down (see ALLOWED);
//   - analysis/ and model/ importing a module outside PURE_PACKAGES (node:fs, node:net, ... and
//     I/O packages are all outside it), or reading the clock / environment (see CLOCK below);
//   - production code importing test support (src/testing/, *.test.ts), which only tests and bench/
//     may import;
//   - an import whose target cannot be known statically (a variable, a template string whose
//     fixed head does not name a file).
// The parser is TypeScript's own (a dev dependency), so comments and strings never count as imports.
//
// Usage: node scripts/check-layers.mjs [ROOT]   (ROOT defaults to this repository; the test plants
// bad imports in a temporary ROOT).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFiles } from './source-files.mjs';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(process.argv[2] ?? here);
const ts = createRequire(join(here, 'package.json'))('typescript');

// The arrows of the README's drawing, one edge each:
//   cli -> server, lab, probe;  server -> store, analysis;  lab -> probe;  probe -> analysis;
//   store -> model;  analysis -> model.
// "Dependencies point down only": a layer may import every layer it reaches by following arrows
// down (the transitive closure below), never one beside or above it. So store may not import
// analysis, and server may not import probe or lab.
const EDGES = {
  cli: ['server', 'lab', 'probe'],
  server: ['store', 'analysis'],
  lab: ['probe'],
  probe: ['analysis'],
  store: ['model'],
  analysis: ['model'],
  model: [],
};
const ALLOWED = {};
for (const layer of Object.keys(EDGES)) {
  const seen = new Set();
  const walk = (l) => {
    for (const next of EDGES[l]) {
      if (!seen.has(next)) {
        seen.add(next);
        walk(next);
      }
    }
  };
  walk(layer);
  ALLOWED[layer] = seen;
}
// web/ (the explorer, a browser bundle) sits beside the drawing: it may import only the shared
// types and pure helpers of src/model/ (so the API's axes are stated once), never a layer that does
// I/O. Nothing under src/ may import web/ (the server serves its built files, not its sources).
ALLOWED.web = new Set(['model']);
// Test support (src/testing/) and every *.test.ts stand above all layers: they may import any of
// them. bench/ likewise. Production code may import neither.
const TOP = new Set(['testing', 'test', 'bench']);

// analysis/ and model/ are pure: no I/O, no clock. They may import only these modules (all pure
// computation); node:fs, node:net, node:dgram, node:child_process, node:http(s), node:dns,
// node:os, node:worker_threads, database and server packages are therefore refused.
const PURE_LAYERS = new Set(['analysis', 'model']);
const PURE_PACKAGES = new Set([
  'ipaddr.js',
  'dns-packet',
  'yaml',
  '@sinclair/typebox',
  '@sinclair/typebox/value',
  'secure-json-parse',
  'csv-parse/sync',
  'jsonc-parser',
  'node:buffer',
  'node:crypto',
  'node:util',
  'node:path',
  'node:url',
]);
// CLOCK: how the "no clock" rule is checked. Syntactically, in production files of analysis/ and
// model/: any mention of `Date.now`, `performance` (.now, .timeOrigin...), `process` (hrtime,
// uptime, env, cwd: the environment is input too), `new Date` or `Date()` without arguments (the
// current time), and `Math.random` (randomness is seeded: model/random.ts). A time is passed in as
// data instead (a measurement's start time, `now` arguments). An alias (`const D = Date; new D()`)
// is not followed: the check is a guard against the ordinary slip, not a proof.

const LAYERS = [...Object.keys(EDGES), 'testing'];
const problems = [];

// Which part of the architecture a file belongs to: a layer, 'testing', 'test', 'web', 'bench'.
function partOf(file) {
  const rel = relative(root, file).split(sep);
  if (rel[0] === 'bench') return 'bench';
  if (rel[0] === 'web') return 'web';
  if (rel[0] !== 'src') return null;
  if (/\.test\.[mc]?[jt]sx?$/.test(file)) return 'test';
  return rel[1];
}

function specifiersOf(sf) {
  const out = []; // { spec, line, kind, dynamicHead? }
  const requireNames = new Set(['require']);
  const line = (node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
  const literal = (node) => (node && (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) ? node.text : undefined);
  const fromArg = (node, arg, kind) => {
    const text = literal(arg);
    if (text !== undefined) return out.push({ spec: text, line: line(node), kind });
    if (arg && ts.isTemplateExpression(arg)) {
      return out.push({ spec: arg.head.text, line: line(node), kind: `${kind} (template)`, partial: true });
    }
    out.push({ spec: undefined, line: line(node), kind });
  };
  // First pass: the names bound to createRequire(...) results.
  const findRequires = (node) => {
    if (ts.isVariableDeclaration(node) && node.initializer && ts.isCallExpression(node.initializer)) {
      const c = node.initializer.expression;
      if (ts.isIdentifier(c) && c.text === 'createRequire' && ts.isIdentifier(node.name)) requireNames.add(node.name.text);
    }
    ts.forEachChild(node, findRequires);
  };
  findRequires(sf);
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      out.push({ spec: literal(node.moduleSpecifier), line: line(node), kind: ts.isImportDeclaration(node) ? 'import' : 'export from' });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      out.push({ spec: literal(node.moduleReference.expression), line: line(node), kind: 'import = require' });
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      out.push({ spec: ts.isLiteralTypeNode(arg) ? literal(arg.literal) : undefined, line: line(node), kind: 'import() type' });
    } else if (ts.isCallExpression(node)) {
      const c = node.expression;
      if (c.kind === ts.SyntaxKind.ImportKeyword) fromArg(node, node.arguments[0], 'import()');
      else if (ts.isIdentifier(c) && requireNames.has(c.text))
        fromArg(node, node.arguments[0], c.text === 'require' ? 'require()' : 'createRequire()()');
      else if (ts.isCallExpression(c) && ts.isIdentifier(c.expression) && c.expression.text === 'createRequire')
        fromArg(node, node.arguments[0], 'createRequire()()');
      else if (
        ts.isPropertyAccessExpression(c) &&
        ts.isIdentifier(c.expression) &&
        requireNames.has(c.expression.text) &&
        c.name.text === 'resolve'
      )
        fromArg(node, node.arguments[0], 'require.resolve()');
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function clockReads(sf) {
  const out = [];
  const line = (node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
  const visit = (node) => {
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
      const obj = node.expression.text;
      const prop = node.name.text;
      if ((obj === 'Date' && prop === 'now') || obj === 'performance' || obj === 'process' || (obj === 'Math' && prop === 'random')) {
        out.push({ line: line(node), what: `${obj}.${prop}` });
      }
    } else if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Date' && !node.arguments?.length) {
      out.push({ line: line(node), what: 'new Date() (the current time)' });
    } else if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Date') {
      out.push({ line: line(node), what: 'Date() (the current time)' });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

// The part a relative import lands in, or a problem.
function targetPart(file, spec) {
  const target = resolve(dirname(file), spec);
  const rel = relative(root, target);
  if (rel.startsWith('..')) return { outside: true };
  const parts = rel.split(sep);
  if (parts[0] === 'src') {
    if (parts.length < 3 && !spec.endsWith('/')) {
      // src/<x> itself (a file directly in src/ or the folder): not a layer.
      return { part: parts[1] && LAYERS.includes(parts[1]) ? parts[1] : null, rel };
    }
    if (/\.test(\.[mc]?[jt]sx?)?$/.test(target)) return { part: 'test', rel };
    return { part: parts[1], rel };
  }
  if (parts[0] === 'web' || parts[0] === 'bench') return { part: parts[0], rel };
  return { part: null, rel };
}

function may(from, to) {
  if (from === to) return true;
  if (to === 'test') return false; // a test file is never imported
  if (TOP.has(from)) return true;
  if (to === 'testing' || to === 'bench') return false;
  if (from === 'web') return ALLOWED.web.has(to);
  if (to === 'web') return false;
  return ALLOWED[from]?.has(to) ?? false;
}

const scanned = [];
for (const top of ['src', 'web', 'bench']) for (const f of sourceFiles(join(root, top))) scanned.push(f);
for (const file of scanned) {
  const from = partOf(file);
  const where = relative(root, file);
  if (from === null || (!LAYERS.includes(from) && !['test', 'web', 'bench'].includes(from))) {
    problems.push(`${where}: not inside a known layer folder (src/${LAYERS.join('|')}/, web/, bench/)`);
    continue;
  }
  const text = readFileSync(file, 'utf8');
  const kind = /\.[mc]?tsx$|\.jsx$/.test(file) ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, kind);
  for (const { spec, line, kind: how, partial } of specifiersOf(sf)) {
    const at = `${where}:${line}`;
    if (spec === undefined || (partial && spec === '')) {
      problems.push(`${at}: ${how} with a specifier that is not a literal: the layer check cannot follow it (write the path out)`);
      continue;
    }
    if (spec.startsWith('.')) {
      if (partial && !spec.includes('/')) {
        problems.push(`${at}: ${how} '${spec}\${...}': the fixed part does not name a folder; the layer check cannot follow it`);
        continue;
      }
      const t = targetPart(file, partial ? spec.slice(0, spec.lastIndexOf('/') + 1) || spec : spec);
      if (t.outside) {
        problems.push(`${at}: ${how} '${spec}' leaves the repository`);
        continue;
      }
      if (t.part === null || t.part === undefined) {
        problems.push(`${at}: ${how} '${spec}' lands outside the layer folders (src/<layer>/, web/, bench/)`);
        continue;
      }
      if (!may(from, t.part)) {
        const why =
          t.part === 'testing' || t.part === 'test' || t.part === 'bench'
            ? 'test support may be imported only by tests and bench/'
            : from === 'web'
              ? 'web/ may import only src/model/'
              : `the architecture (README.md, docs/ARCHITECTURE.md) lets '${from}' import only ${[...(ALLOWED[from] ?? [])].join(', ') || 'nothing else'}`;
        problems.push(`${at}: layer '${from}' may not import '${t.part}' (${how} '${spec}'): ${why}`);
      }
    } else if (PURE_LAYERS.has(from)) {
      const name = spec.startsWith('node:') ? spec : /^[a-z_]+(\/|$)/.test(spec) && isBuiltin(spec) ? `node:${spec}` : spec;
      if (!PURE_PACKAGES.has(name)) {
        problems.push(
          `${at}: '${from}' is pure (no I/O, no clock) but ${how} '${spec}' (allowed modules: ${[...PURE_PACKAGES].join(', ')})`,
        );
      }
    }
  }
  if (PURE_LAYERS.has(from)) {
    for (const { line, what } of clockReads(sf)) {
      problems.push(`${where}:${line}: '${from}' is pure (no I/O, no clock) but reads ${what}; pass the value in`);
    }
  }
}

function isBuiltin(spec) {
  return (
    createRequire(import.meta.url)('node:module').builtinModules.includes(spec.split('/')[0]) ||
    createRequire(import.meta.url)('node:module').builtinModules.includes(spec)
  );
}

if (problems.length) {
  console.error(`layer check failed (${problems.length}):\n  ` + problems.join('\n  '));
  process.exit(1);
}
console.log(`layer check: ok (${scanned.length} files)`);
