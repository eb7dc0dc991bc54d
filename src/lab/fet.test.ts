import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { randomNonExempt, exemptControl, fetTrial, runFetTest } from '../probe/index.js';
import { FetCensor } from './fet.js';
import { startLab, type Lab } from './lab.js';
import { nftAvailable } from './nft.js';
import { parseScenario } from './scenario.js';

/** The exact two-sided 99% acceptance interval of Binomial(n, p): counts outside it have probability < 1%. */
function binomialInterval(n: number, p: number, level = 0.99): [number, number] {
  const logPmf = (k: number): number => {
    let lc = 0;
    for (let i = 1; i <= k; i++) lc += Math.log((n - k + i) / i);
    return lc + k * Math.log(p) + (n - k) * Math.log(1 - p);
  };
  const pmf = Array.from({ length: n + 1 }, (_, k) => Math.exp(logPmf(k)));
  const tail = (1 - level) / 2;
  let lo = 0;
  for (let acc = 0; acc + pmf[lo]! < tail; lo++) acc += pmf[lo]!;
  let hi = n;
  for (let acc = 0; acc + pmf[hi]! < tail; hi--) acc += pmf[hi]!;
  return [lo, hi];
}

const scenario = (fet: string, extra = ''): string => `
name: fet-test
seed: 11
world:
  sites: [{ domain: site.example }]
  helper: false
  services:
    - { name: sink, kind: sink }
    - { name: other, kind: sink }
censors:
  - name: gfw
    layer: national
${fet}
${extra}`;

describe('FetCensor.decide(flow, firstPacket, now): the decision without sockets', () => {
  const flow = (i: number, port = 9000) => ({ client: `10.0.${i >> 8}.${i & 255}`, server: '10.9.9.9', port });

  it('blocks non-exempt first packets at the configured rate: 2,000 flows inside the binomial 99% interval', () => {
    for (const rate of [0.263, 0.1]) {
      const fet = new FetCensor(parseScenario(scenario(`    fet: { rate: ${rate} }`), 's.yaml'));
      let blocked = 0;
      for (let i = 0; i < 2000; i++) if (fet.decide(flow(i), randomNonExempt(64), 0).kind === 'drop') blocked++;
      const [lo, hi] = binomialInterval(2000, rate);
      assert.ok(blocked >= lo && blocked <= hi, `rate ${rate}: ${blocked} of 2000 outside [${lo}, ${hi}]`);
      assert.equal(fet.counts.inspected, 2000);
    }
  });

  it('never blocks an exempt first packet, and the same seed gives the same decisions', () => {
    const a = new FetCensor(parseScenario(scenario('    fet: { rate: 1 }'), 's.yaml'));
    for (let i = 0; i < 300; i++) assert.equal(a.decide(flow(i), exemptControl(64), 0).kind, 'pass');
    const packets = Array.from({ length: 200 }, () => randomNonExempt(40));
    const run = () => {
      const f = new FetCensor(parseScenario(scenario('    fet: {}'), 's.yaml'));
      return packets.map((p, i) => f.decide(flow(i), p, 0).kind).join('');
    };
    assert.equal(run(), run());
    assert.match(run(), /drop/);
  });

  it('residual: every flow on (client, server, port) dropped for residual_s, exempt ones too; other ports and clients not', () => {
    const fet = new FetCensor(parseScenario(scenario('    fet: { rate: 1, residual_s: 30 }'), 's.yaml'));
    const f = flow(1);
    assert.deepEqual(fet.decide(f, randomNonExempt(64), 1000).kind, 'drop');
    assert.deepEqual(fet.decide(f, exemptControl(64), 1000 + 29_999), { kind: 'drop', why: 'residual', censor: 'gfw' });
    assert.equal(fet.decide({ ...f, port: 9001 }, exemptControl(64), 2000).kind, 'pass');
    assert.equal(fet.decide(flow(2), exemptControl(64), 2000).kind, 'pass');
    assert.equal(fet.decide(f, exemptControl(64), 1000 + 30_000).kind, 'pass');
  });

  it('applies only to the servers listed (address, domain or service name)', () => {
    const fet = new FetCensor(parseScenario(scenario('    fet: { rate: 1, servers: [sink, 10.1.1.1] }'), 's.yaml'));
    assert.equal(
      fet.decide({ client: 'c', server: '10.2.2.2', port: 1, serverNames: ['other'] }, randomNonExempt(64), 0).why,
      'not-covered',
    );
    assert.equal(fet.decide({ client: 'c', server: '10.2.2.2', port: 1, serverNames: ['sink'] }, randomNonExempt(64), 0).kind, 'drop');
    assert.equal(fet.decide({ client: 'c', server: '10.1.1.1', port: 1 }, randomNonExempt(64), 0).kind, 'drop');
  });

  it('the scenario keys are validated', () => {
    assert.throws(() => parseScenario(scenario('    fet: { rate: 2 }'), 's.yaml'), /fet\.rate/);
    assert.throws(() => parseScenario(scenario('    fet: { rates: 1 }'), 's.yaml'), /rates/);
    assert.throws(
      () => parseScenario(scenario('    fet: {}').replace('kind: sink }', 'kind: forward, forward: "8.8.8.8:53" }'), 's.yaml'),
      /loopback host:port/,
    );
  });
});

async function withLab<T>(yaml: string, fn: (lab: Lab, sink: { host: string; port: number }) => Promise<T>): Promise<T> {
  const lab = await startLab(parseScenario(yaml, 'fet.yaml'));
  try {
    const s = lab.services.find((x) => x.name === 'sink')!;
    return await fn(lab, { host: s.address, port: s.port });
  } finally {
    await lab.close();
  }
}

describe("the loopback lab's fet censor, through real sockets", () => {
  it('drops (no RST, no data) a blocked flow from its first packet, then the residual; the exempt control passes before', async () => {
    await withLab(scenario('    fet: { rate: 1, residual_s: 1 }'), async (_lab, sink) => {
      assert.equal((await fetTrial(sink.host, sink.port, exemptControl(64), 1000)).outcome, 'pass');
      const blocked = await fetTrial(sink.host, sink.port, randomNonExempt(64), 600);
      assert.deepEqual([blocked.outcome, blocked.failure], ['dropped', 'generic_timeout_error']);
      assert.equal((await fetTrial(sink.host, sink.port, exemptControl(64), 600)).outcome, 'dropped');
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await fetTrial(sink.host, sink.port, exemptControl(64), 1000)).outcome, 'pass');
    });
  });

  it('2,000 flows from distinct clients: the blocked share lies in the binomial 99% interval of the rate', async () => {
    await withLab(scenario('    fet: { rate: 0.263, residual_s: 180 }'), async (lab, sink) => {
      let blocked = 0;
      for (let i = 0; i < 2000; i += 250) {
        const got = await Promise.all(
          Array.from(
            { length: 250 },
            (_, k) =>
              new Promise<boolean>((resolve) => {
                const s = net.connect({ host: sink.host, port: sink.port, localAddress: lab.clientAddress(i + k) }, () =>
                  s.write(randomNonExempt(64)),
                );
                // Generous: a passed flow answers in milliseconds, but 250 at once on a shared machine can be slow.
                const t = setTimeout(() => {
                  s.destroy();
                  resolve(true);
                }, 2000);
                s.on('data', () => {
                  clearTimeout(t);
                  s.destroy();
                  resolve(false);
                });
                s.on('error', () => {
                  clearTimeout(t);
                  resolve(false);
                });
              }),
          ),
        );
        blocked += got.filter(Boolean).length;
      }
      const [lo, hi] = binomialInterval(2000, 0.263);
      assert.ok(blocked >= lo && blocked <= hi, `${blocked} of 2000 outside [${lo}, ${hi}]`);
      assert.equal(lab.fet.counts.blocked, blocked);
    });
  });
});

describe('runFetTest(host, port) against the lab', () => {
  const quick = { timeoutMs: 400, residualStepMs: 250, maxResidualS: 10, maxSeconds: 120 };

  it('says active with the censor on (estimated rate and residual)', async () => {
    await withLab(scenario('    fet: { rate: 0.263, residual_s: 1 }'), async (_lab, sink) => {
      const m = await runFetTest(sink.host, sink.port, quick);
      const k = m.test_keys;
      assert.equal(m.test_name, 'x_fet');
      assert.equal(k.x_fet_verdict, 'active', JSON.stringify({ ...k, x_fet_trials: undefined }));
      assert.equal(k.x_fet_confidence, 0.99);
      assert.ok(k.x_fet_residual_s !== null && k.x_fet_residual_s >= 1 && k.x_fet_residual_s < 2.5, `residual ${k.x_fet_residual_s}`);
      assert.equal(k.x_fet_trials.length, k.x_fet_trials_spent);
      assert.equal(k.x_fet_control.blocked, 0);
    });
  });

  it('says not active with the censor off, and with a censor that only blocks by SNI', async () => {
    for (const censor of ['    sampling: 1', "    sni_reset: { rules: ['site\\.example$'] }"]) {
      await withLab(scenario(censor), async (_lab, sink) => {
        const k = (await runFetTest(sink.host, sink.port, quick)).test_keys;
        assert.deepEqual([k.x_fet_verdict, k.x_fet_stop_reason, k.x_fet_random.blocked], ['not_active', 'sprt_not_active', 0], censor);
        assert.equal(k.x_fet_confidence, 0.99);
      });
    }
  });

  it(
    'says not active (controls blocked) where the sink is null-routed by address',
    { skip: nftAvailable().ok ? false : 'needs nftables (root)' },
    async () => {
      await withLab(scenario('    null_route: [sink]'), async (_lab, sink) => {
        const k = (await runFetTest(sink.host, sink.port, quick)).test_keys;
        assert.deepEqual([k.x_fet_verdict, k.x_fet_stop_reason, k.x_fet_random.sent], ['not_active', 'controls_blocked', 0]);
      });
    },
  );
});
