// `wallscope campaign FILE [the network options of measure]`: measure a list on a schedule,
// unattended (DESIGN.md "Campaigns"). Wiring only: src/probe/campaign.ts runs it.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CampaignError, parseCampaign, runCampaign } from '../probe/index.js';
import { networkOptions, positiveInt, probeOptionsFrom, type NetworkCliOptions } from './probe-options.js';

interface CampaignCliOptions extends NetworkCliOptions {
  state?: string;
  every?: string;
  collector?: string;
  perHour?: string;
  concurrency?: string;
  rounds?: string;
}

/** $STATE_DIRECTORY (systemd's StateDirectory=), else ~/.local/share/wallscope/campaigns; one folder per campaign. */
function defaultStateDir(name: string): string {
  const base = process.env.STATE_DIRECTORY?.split(':')[0] || join(homedir(), '.local', 'share', 'wallscope', 'campaigns');
  return join(base, name.replace(/[^A-Za-z0-9._-]+/g, '_'));
}

export function register(program: Command): void {
  networkOptions(
    program
      .command('campaign')
      .description(
        'measure a campaign (YAML with urls:/lists:, every:, collector:, limits:; or an OONI Run v2 descriptor) on a schedule, unattended; resumable after a kill or a reboot',
      )
      .argument('<file>', 'campaign file (YAML or JSON)'),
  )
    .option(
      '--state <dir>',
      'state directory: schedule, journal and upload spool (default: $STATE_DIRECTORY or ~/.local/share/wallscope/campaigns/<name>)',
    )
    .option('--every <period>', "period, overriding the file's every: (seconds, or 10s, 5m, 6h, 1d)")
    .option('--collector <url>', "collector URL, overriding the file's collector:")
    .option('--per-hour <n>', 'most measurements started in any hour (the budget)')
    .option('--concurrency <n>', 'URLs measured at once (default 4, or limits.concurrency)')
    .option('--rounds <n>', 'stop after this many rounds since the campaign first started (default: run until stopped)')
    .action(async (file: string, o: CampaignCliOptions) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw Object.assign(new Error(`cannot read the campaign ${file}: ${(e as Error).message}`), { exitCode: 2 });
      }
      let spec;
      try {
        spec = parseCampaign(text, file, {
          ...(o.every !== undefined ? { every: o.every } : {}),
          ...(o.collector !== undefined ? { collector: o.collector } : {}),
          ...(o.perHour !== undefined ? { perHour: positiveInt('--per-hour', o.perHour) } : {}),
          ...(o.concurrency !== undefined ? { concurrency: positiveInt('--concurrency', o.concurrency) } : {}),
        });
      } catch (e) {
        if (e instanceof CampaignError)
          throw Object.assign(new Error(`invalid campaign:${e.message.includes('\n') ? '\n' : ' '}${e.message}`), { exitCode: 2 });
        throw e;
      }
      for (const w of spec.warnings) process.stderr.write(`campaign: ${w}\n`);
      const rounds = o.rounds !== undefined ? positiveInt('--rounds', o.rounds) : undefined;
      const probe = probeOptionsFrom(o, 'campaign');
      // Lab mode: the collector's analysis needs the lab range to count it as public (as `lab eval` annotates).
      if (probe.allowNet?.length) probe.annotations = { ...(probe.annotations ?? {}), x_lab_allow_net: probe.allowNet.join(',') };
      const stateDir = o.state ?? defaultStateDir(spec.name);
      const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
      log(
        `campaign ${spec.name}: ${spec.targets.length} URL(s) every ${spec.everyS} s${spec.perHour ? `, at most ${spec.perHour}/hour` : ''}, ${spec.collector ? `collector ${spec.collector}` : 'no collector (measurements stay spooled)'}, state in ${stateDir}`,
      );
      // SIGTERM (systemd stop) or Ctrl-C: stop taking URLs, finish those in flight, upload, exit 0.
      const stop = new AbortController();
      const onSignal = (sig: string) => {
        if (stop.signal.aborted) process.exit(130);
        log(`${sig}: finishing the measurements in flight, then uploading`);
        stop.abort();
      };
      const onTerm = () => onSignal('SIGTERM');
      const onInt = () => onSignal('SIGINT');
      process.on('SIGTERM', onTerm);
      process.on('SIGINT', onInt);
      try {
        const s = await runCampaign(spec, { stateDir, probe, log, signal: stop.signal, ...(rounds !== undefined ? { rounds } : {}) });
        log(
          `campaign ${spec.name} stopped: ${s.rounds} round(s), ${s.measured} measured, ${s.uploaded} uploaded, ${s.spooled} still spooled`,
        );
      } catch (e) {
        if (e instanceof CampaignError) throw Object.assign(new Error(e.message), { exitCode: 2 });
        throw e;
      } finally {
        process.off('SIGTERM', onTerm);
        process.off('SIGINT', onInt);
      }
    });
}
