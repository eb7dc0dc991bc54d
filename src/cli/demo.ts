// `wallscope demo`: the built-in realistic lab with the Citizen Lab China list's domains, measured
// and summed up. Parses arguments, wires src/lab, prints.
import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { buildDemoScenario, DEMO_LIST, measureLab, scoreRows, startLab, summarize } from '../lab/index.js';

export function register(program: Command): void {
  program
    .command('demo')
    .description('Run a realistic national + provincial + ISP censor lab over the Citizen Lab China list and show what is blocked, how and by whom')
    .option('--list <csv>', 'Citizen Lab test list to use', DEMO_LIST)
    .option('--limit <n>', 'only the first n entries of the list', (v) => Number(v))
    .option('--concurrency <n>', 'targets measured at once', (v) => Number(v), 12)
    .option('--json', 'print the summary and the score as JSON')
    .option('--out <file.jsonl>', 'also write every measurement (OONI format, verdict in test_keys.x_verdict) as JSON lines')
    .action(async (o: { list: string; limit?: number; concurrency: number; json?: boolean; out?: string }) => {
      const { scenario, skipped } = buildDemoScenario(o.list, o.limit);
      const w = (x: string) => process.stdout.write(x);
      if (!o.json) w(`Starting a lab with ${scenario.world.sites.length} sites from ${o.list} (${skipped} entries skipped: not http(s) with a plain domain)...\n`);
      const t0 = performance.now();
      const lab = await startLab(scenario, { standardPorts: false });
      try {
        const { rows } = await measureLab(lab, {
          concurrency: o.concurrency,
          onRow: o.json || !process.stderr.isTTY ? undefined : (_r, done, total) => process.stderr.write(`\rmeasured ${done}/${total}`),
        });
        if (!o.json && process.stderr.isTTY) process.stderr.write('\n');
        const seconds = (performance.now() - t0) / 1000;
        if (o.out) writeFileSync(o.out, rows.flatMap((r) => (r.measurement ? [JSON.stringify(r.measurement)] : [])).join('\n') + '\n');
        const sum = summarize(rows, scenario.world.sites.length);
        const score = scoreRows(scenario.name, rows);
        if (o.json) {
          w(JSON.stringify({ summary: sum, seconds, warnings: lab.warnings, score }) + '\n');
          return;
        }
        w(`\nMeasured ${sum.targets} URLs on ${sum.sites} sites in ${seconds.toFixed(1)} s.\n`);
        w(`  blocked:    ${sum.blocked}\n  accessible: ${sum.accessible}\n  other (down or no verdict): ${sum.other}\n`);
        w('  blocked, by mechanism:\n');
        for (const [m, n] of Object.entries(sum.byMechanism).sort((a, b) => b[1] - a[1])) w(`    ${m.padEnd(16)} ${n}\n`);
        w('  blocked, by layer:\n');
        for (const [l, n] of Object.entries(sum.byLayer).sort((a, b) => b[1] - a[1])) w(`    ${l.padEnd(16)} ${n}\n`);
        w(`  the lab really blocked ${sum.truthBlocked}; the probe's blocking class agreed on ${(score.blocking_agreement * 100).toFixed(1)}% of the URLs, ${score.mismatches.length} verdicts differ in mechanism or layer.\n`);
        for (const warn of lab.warnings) w(`  WARNING: ${warn}\n`);
      } finally {
        await lab.close();
      }
    });
}
