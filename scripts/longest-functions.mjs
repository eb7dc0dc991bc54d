#!/usr/bin/env node
// Lists the longest functions (lines from the declaration to the closing brace) under src/, web/ and
// bench/, longest first, with TypeScript's parser: the figure behind STYLE's "no function over about
// 80 lines unless a comment says why". Usage: node scripts/longest-functions.mjs [ROOT] [N]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFiles } from './source-files.mjs';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(process.argv[2] ?? here);
const most = Number(process.argv[3] ?? 20);
const ts = createRequire(join(here, 'package.json'))('typescript');

const rows = [];
for (const top of ['src', 'web', 'bench']) {
  for (const file of sourceFiles(join(root, top), /\.(ts|tsx)$/)) {
    const text = readFileSync(file, 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
    const test = /\.test\.tsx?$/.test(file);
    const visit = (node, owner) => {
      let name = owner;
      if (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isFunctionExpression(node) || ts.isArrowFunction(node)) {
        const n =
          node.name?.getText(sf) ??
          (ts.isVariableDeclaration(node.parent)
            ? node.parent.name.getText(sf)
            : ts.isPropertyAssignment(node.parent)
              ? node.parent.name.getText(sf)
              : '(anonymous)');
        const a = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
        const b = sf.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
        // Test bodies (describe/it callbacks) are not counted: they are lists of cases.
        if (!test) rows.push({ lines: b - a + 1, where: `${relative(root, file)}:${a}`, name: owner ? `${owner} > ${n}` : n });
        name = n;
      }
      ts.forEachChild(node, (c) => visit(c, name));
    };
    visit(sf, '');
  }
}
rows.sort((x, y) => y.lines - x.lines);
const over = rows.filter((r) => r.lines > 80).length;
console.log(`${rows.length} functions (tests excluded); ${over} over 80 lines`);
for (const r of rows.slice(0, most)) console.log(`${String(r.lines).padStart(5)}  ${r.where}  ${r.name}`);
