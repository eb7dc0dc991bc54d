// The ESNI drop in netns mode, in path: the router's kernel drops the ClientHello that carries
// 0xffce (no RST, the server never answers), then every client-to-server packet on (client,
// server, port) for residual_s, SYNs included, so Debian's curl from that address times out in
// connect while curl from another address, or to another server, loads the page.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { clientHelloFor } from '../../probe/index.js';
import { withExtension } from '../../testing/clienthello.js';
import { ESNI_EXTENSION } from '../esni.js';
import { startWitnessLab, runCommand, type WitnessLab } from '../../testing/netns-witness.js';
import { measureNetnsLab, type NetnsLab } from './netns-lab.js';
import type { RouterEvent } from './router.js';
import { netnsMissing } from './topology.js';

const missing = netnsMissing();
const skip = missing.length ? `netns mode needs ${missing.join(', ')}` : false;

const RESIDUAL_S = 4;
const SCENARIO = `
name: esni
seed: 9
world:
  sites: [{ domain: esni.example }, { domain: other.example }]
  resolvers: { isp: {}, public: {} }
censors:
  - name: gfw
    layer: national
    hop: 2
    esni_drop: { residual_s: ${RESIDUAL_S} }
`;

// Run in the client namespace: connect from SRC, send the hex bytes, report what came back in 2 s.
const RAW_CLIENT = `
const net = require('node:net');
const [host, src, hex] = process.argv.slice(1);
const s = net.connect({ host, port: 443, localAddress: src }, () => s.write(Buffer.from(hex, 'hex')));
const done = (what) => { console.log(what); process.exit(0); };
s.setTimeout(2000, () => done(s.connecting ? 'connect-timeout' : 'silent'));
s.on('data', () => done('answered'));
s.on('error', (e) => done('error ' + e.code));
`;

describe('netns lab: the ESNI drop in path', { skip }, () => {
  let lab: NetnsLab;
  let ca: string;
  let witness: WitnessLab | undefined;
  const events: RouterEvent[] = [];
  before(async () => {
    witness = await startWitnessLab(SCENARIO, 'esni', { log: (e) => events.push(e) });
    ({ lab, ca } = witness);
  });
  after(async () => {
    await witness?.close();
  });
  const addr = (d: string) => lab.sites.find((s) => s.domain === d)!.address;
  const raw = (src: string, bytes: Buffer) =>
    runCommand(lab.inClient([process.execPath, '-e', RAW_CLIENT, addr('esni.example'), src, bytes.toString('hex')]));
  const curl = (src: string, url: string) =>
    runCommand(
      lab.inClient([
        'curl',
        '-sS',
        '--interface',
        src,
        '--connect-timeout',
        '2',
        '-m',
        '6',
        '--cacert',
        ca,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        url,
      ]),
    );

  it('answers a plain ClientHello, silently drops one with 0xffce, then drops the SYNs of (client, server, 443) for residual_s', async () => {
    const hello = await clientHelloFor('esni.example');
    const a = '198.18.200.1';
    assert.equal((await raw(a, hello)).stdout, 'answered');
    const t0 = Date.now();
    assert.equal((await raw(a, withExtension(hello, ESNI_EXTENSION, Buffer.alloc(200, 3)))).stdout, 'silent', 'no answer and no RST');
    assert.ok(
      events.some((e) => e.action === 'esni' && e.name === 'esni.example'),
      JSON.stringify(events),
    );
    // Residual: curl from the same address cannot even connect ...
    const blocked = await curl(a, 'https://esni.example/');
    assert.equal(blocked.code, 28, `curl: ${blocked.stderr}`); // CURLE_OPERATION_TIMEDOUT (in connect)
    assert.match(blocked.stderr, /onnect|timed out/i);
    // ... while another client address, and the same address to another server, load the page.
    assert.equal((await curl('198.18.200.2', 'https://esni.example/')).stdout, '200');
    assert.equal((await curl(a, 'https://other.example/')).stdout, '200');
    // The kernel diverted the ClientHellos (its bpf rule counted them), and the censor re-sent the passing ones.
    const counters = await runCommand(['ip', ['netns', 'exec', lab.topology.routers[1]!, 'iptables', '-L', 'FORWARD', '-v', '-x', '-n']]);
    const diverted = /^\s*(\d+)\s+\d+\s+DROP\s+6\b.*match bpf/m.exec(counters.stdout);
    assert.ok(diverted && Number(diverted[1]) >= 4, counters.stdout);
    // After the residual, the triple is free again.
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + RESIDUAL_S * 1000 + 500 - Date.now())));
    assert.equal((await curl(a, 'https://esni.example/')).stdout, '200');
  });

  it('measures every target of the scenario as its truth, not blocked (the probe sends no ESNI)', async () => {
    const { rows } = await measureNetnsLab(lab);
    assert.equal(rows.length, 4);
    for (const r of rows) {
      assert.equal(r.expected.mechanism === null || r.expected.mechanism === 'none', true, r.target);
      assert.deepEqual(
        { blocking: r.got.blocking, mechanism: r.got.mechanism },
        { blocking: r.expected.blocking, mechanism: r.expected.mechanism },
        `${r.target}: ${r.error ?? ''}`,
      );
    }
  });
});
