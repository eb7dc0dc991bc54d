import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { clientHelloFor } from '../probe/index.js';
import { withExtension } from '../testing/clienthello.js';
import { peekClientHello } from './clienthello.js';
import { divertedHello, ESNI_EXTENSION, EsniCensor, helloDivertBpf } from './esni.js';
import { startLab, type Lab } from './lab.js';
import { Policy } from './policy.js';
import { parseScenario, ScenarioError } from './scenario.js';
import { computedTruths } from './truth.js';

const scenario = (esni: string) => `
name: esni-test
seed: 5
world:
  sites: [{ domain: esni.example }, { domain: other.example }]
  helper: false
censors:
  - name: gfw
    layer: national
${esni}
`;

const flow = (client = '10.0.0.1', port = 443) => ({ client, server: '10.9.9.9', port });

describe('peekClientHello: extension types', () => {
  it("lists a real ClientHello's extensions in order, and sees an appended 0xffce", async () => {
    const hello = await clientHelloFor('esni.example');
    const plain = peekClientHello(hello);
    assert.equal(plain.kind, 'hello');
    if (plain.kind !== 'hello') return;
    assert.equal(plain.sni, 'esni.example');
    assert.ok(plain.extensions.includes(0) && plain.extensions.includes(43), `server_name and supported_versions: ${plain.extensions}`);
    assert.ok(!plain.extensions.includes(ESNI_EXTENSION));
    const esni = peekClientHello(withExtension(hello, ESNI_EXTENSION, Buffer.alloc(100, 7)));
    assert.ok(esni.kind === 'hello' && esni.sni === 'esni.example');
    assert.deepEqual(esni.kind === 'hello' && esni.extensions, [...plain.extensions, ESNI_EXTENSION]);
  });
});

describe('EsniCensor.decide(flow, extensions, now): the decision without sockets', () => {
  it('drops a ClientHello with 0xffce, passes one without, and holds (client, server, port) for the residual', () => {
    const c = new EsniCensor(parseScenario(scenario('    esni_drop: { residual_s: 120 }'), 's.yaml'));
    assert.deepEqual(c.decide(flow(), [0, 10, 43], 0), { kind: 'pass' });
    assert.deepEqual(c.decide(flow(), [0, ESNI_EXTENSION], 0), {
      kind: 'drop',
      why: 'blocked',
      censor: 'gfw',
      extension: ESNI_EXTENSION,
      residualS: 120,
    });
    // Residual: any later hello on the triple, even a plain one; another port or client is free.
    assert.equal(c.decide(flow(), [0, 43], 119_999).kind, 'drop');
    assert.equal(c.decide(flow('10.0.0.1', 8443), [0, 43], 1000).kind, 'pass');
    assert.equal(c.decide(flow('10.0.0.2'), [0, 43], 1000).kind, 'pass');
    assert.equal(c.inResidual(flow(), 120_000), null);
    assert.deepEqual(c.counts, { blocked: 1, residual: 1 });
  });

  it('draws 120 or 180 s per block by default (both occur, reproducibly from the seed); other extensions can be configured', () => {
    const draws = () => {
      const c = new EsniCensor(parseScenario(scenario('    esni_drop: {}'), 's.yaml'));
      return Array.from({ length: 40 }, (_, i) => {
        const d = c.decide(flow(`10.0.1.${i}`), [ESNI_EXTENSION], 0);
        return d.kind === 'drop' ? d.residualS : -1;
      });
    };
    const a = draws();
    assert.deepEqual(new Set(a), new Set([120, 180]));
    assert.deepEqual(draws(), a);
    const ech = new EsniCensor(parseScenario(scenario('    esni_drop: { extensions: [0xfe0d], residual_s: 0 }'), 's.yaml'));
    assert.equal(ech.decide(flow(), [ESNI_EXTENSION], 0).kind, 'pass');
    assert.equal(ech.decide(flow(), [0xfe0d], 0).kind, 'drop');
    assert.equal(ech.decide(flow(), [0], 1).kind, 'pass', 'residual_s: 0 keeps no residual');
  });

  it('refuses bad esni_drop keys, naming them', () => {
    for (const [bad, key] of [
      ['    esni_drop: { extensions: [] }', 'esni_drop.extensions'],
      ['    esni_drop: { extensions: [70000] }', 'esni_drop.extensions[0]'],
      ['    esni_drop: { residual_s: -1 }', 'esni_drop.residual_s'],
      ['    esni_drop: { ports: [443] }', 'esni_drop'],
    ] as const) {
      assert.throws(
        () => parseScenario(scenario(bad), 's.yaml'),
        (e: unknown) => e instanceof ScenarioError && e.message.includes(key),
        bad,
      );
    }
  });

  it('diverts exactly the segments that start a ClientHello with TTL above 1 (the cBPF program and its TypeScript twin)', () => {
    const prog = helloDivertBpf().split(',');
    assert.equal(Number(prog[0]), prog.length - 1);
    assert.ok(prog.length - 1 <= 64, 'xt_bpf takes at most 64 instructions');
    // Every conditional jump lands inside the program.
    prog.slice(1).forEach((insn, i) => {
      const [code, jt, jf] = insn.split(' ').map(Number);
      if ((code! & 0x07) === 0x05) assert.ok(i + 1 + Math.max(jt!, jf!) < prog.length - 1, insn);
    });
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x30, 0x01]);
    assert.equal(divertedHello(64, hello), true);
    assert.equal(divertedHello(1, hello), false, 'a TTL-expiring trigger is left to the kernel (time exceeded)');
    assert.equal(divertedHello(64, Buffer.from([0x16, 0x03, 0x01, 0x00, 0x30, 0x02])), false, 'server_hello');
    assert.equal(divertedHello(64, Buffer.from('GET / HTTP/1.1\r\n')), false);
    assert.equal(divertedHello(64, hello.subarray(0, 5)), false);
  });
});

/** What the client reads within `ms` after sending `bytes` (null: nothing, the flow was dropped; 'error': a reset or refusal). */
function sendAndListen(host: string, port: number, localAddress: string, bytes: Buffer, ms: number): Promise<Buffer | null | 'error'> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress }, () => s.write(bytes));
    const timer = setTimeout(() => {
      s.destroy();
      resolve(null);
    }, ms);
    s.once('data', (d: Buffer) => {
      clearTimeout(timer);
      s.destroy();
      resolve(d);
    });
    s.on('error', () => {
      clearTimeout(timer);
      resolve('error');
    });
  });
}

/** Whether a real TLS handshake with the site completes from `localAddress` within `ms`. */
function handshake(lab: Lab, domain: string, localAddress: string, ms: number): Promise<boolean> {
  const site = lab.sites.find((s) => s.domain === domain)!;
  return new Promise((resolve) => {
    const socket = net.connect({ host: site.address, port: site.httpsPort!, localAddress });
    const t = tls.connect({ socket, servername: domain, ca: [lab.ca.certPem], timeout: ms }, () => {
      t.destroy();
      resolve(true);
    });
    socket.setTimeout(ms, () => t.emit('timeout'));
    t.on('timeout', () => {
      t.destroy();
      resolve(false);
    });
    t.on('error', () => resolve(false));
  });
}

describe('the loopback lab with esni_drop', () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab(parseScenario(scenario('    esni_drop: { residual_s: 2 }'), 'esni.yaml'));
  });
  after(async () => {
    await lab?.close();
  });

  it('answers a plain ClientHello, drops one with ESNI (no RST), then holds the triple for residual_s only', async () => {
    const site = lab.sites.find((s) => s.domain === 'esni.example')!;
    const hello = await clientHelloFor('esni.example');
    const a = lab.clientAddress(1);
    assert.ok(Buffer.isBuffer(await sendAndListen(site.address, site.httpsPort!, a, hello, 2000)), 'a plain ClientHello is answered');
    assert.equal(
      await sendAndListen(site.address, site.httpsPort!, a, withExtension(hello, ESNI_EXTENSION, Buffer.alloc(64, 1)), 1000),
      null,
    );
    assert.equal(lab.esni.counts.blocked, 1);
    // Residual: a normal handshake from the same client to the same server and port gets nothing ...
    assert.equal(await handshake(lab, 'esni.example', a, 800), false);
    // ... while another client, and the same client to another server, are untouched.
    assert.equal(await handshake(lab, 'esni.example', lab.clientAddress(2), 3000), true);
    assert.equal(await handshake(lab, 'other.example', a, 3000), true);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal(await handshake(lab, 'esni.example', a, 3000), true, 'the residual ended');
  });

  it('leaves the truth of every target (normal clients) as without the censor', () => {
    const without = parseScenario(scenario(''), 'plain.yaml');
    const truths = computedTruths(without, new Policy(without));
    assert.deepEqual(
      lab.targets.map((t) => ({ url: t.url, truth: t.truth })),
      truths,
    );
  });
});
