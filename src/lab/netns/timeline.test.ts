// A timeline in netns mode: the routers' on-path censors follow it from lab time 0 (when every
// part is up), so Debian's curl in the client namespace is reset only while the rule is listed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startWitnessLab, runCommand, type WitnessLab } from '../../testing/netns-witness.js';
import { type NetnsLab } from './netns-lab.js';
import type { RouterEvent } from './router.js';
import { netnsMissing } from './topology.js';

const missing = netnsMissing();
const skip = missing.length ? `netns mode needs ${missing.join(', ')}` : false;

const ADD_AT = 4;
const REMOVE_AT = 8;
const SCENARIO = `
name: netns-timeline
seed: 2
world:
  sites: [{ domain: late.example }, { domain: open.example }]
  resolvers: { isp: {}, public: {} }
censors:
  - name: gfw
    layer: national
    sni_reset: { rules: ['^never\\.example$'], fingerprint: gfw-type-1, residual_s: 0 }
timeline:
  - { at: ${ADD_AT}, censor: gfw, add: { sni_reset: { rules: ['^late\\.example$'] } } }
  - { at: ${REMOVE_AT}, censor: gfw, remove: { sni_reset: { rules: ['^late\\.example$'] } } }
`;

describe('netns lab: the routers follow the timeline', { skip }, () => {
  let lab: NetnsLab;
  let ca: string;
  let witness: WitnessLab | undefined;
  const events: RouterEvent[] = [];
  before(async () => {
    witness = await startWitnessLab(SCENARIO, 'netns-timeline', { log: (e) => events.push(e) });
    ({ lab, ca } = witness);
  });
  after(async () => {
    await witness?.close();
  });
  const curl = (url: string) =>
    runCommand(lab.inClient(['curl', '-sS', '-m', '3', '--cacert', ca, '-o', '/dev/null', '-w', '%{http_code}', url]));
  const until = (s: number) => new Promise((r) => setTimeout(r, Math.max(0, lab.startedAt + s * 1000 - Date.now())));

  it('resets the SNI only between the entry that adds the rule and the one that removes it', async () => {
    assert.deepEqual(lab.warnings, []);
    assert.ok(Date.now() < lab.startedAt + (ADD_AT - 1) * 1000, 'the lab came up before the first entry');
    assert.equal((await curl('https://late.example/')).stdout, '200', 'before the rule is added');
    await until(ADD_AT + 0.5);
    const blocked = await curl('https://late.example/');
    assert.notEqual(blocked.stdout, '200', `while listed: ${blocked.stderr}`);
    assert.match(blocked.stderr, /reset|SSL|recv/i);
    assert.equal((await curl('https://open.example/')).stdout, '200', 'another name is untouched');
    await until(REMOVE_AT + 0.5);
    assert.equal((await curl('https://late.example/')).stdout, '200', 'after the rule is removed');
    const changes = events.filter((e) => e.action === 'timeline').map((e) => e.name);
    assert.deepEqual(changes, [`lab time ${ADD_AT} s`, `lab time ${REMOVE_AT} s`]);
  });
});

// The in-path rules follow the timeline too: nftables elements in the router's namespace.
const DROP_AT = 4;
const LIFT_AT = 8;
const IN_PATH = `
name: netns-timeline-in-path
seed: 3
world:
  sites: [{ domain: dropped.example }, { domain: refused.example }, { domain: open.example }]
  resolvers: { isp: {}, public: {} }
censors:
  - name: gfw
    layer: national
    null_route: []
    reject: []
timeline:
  - { at: ${DROP_AT}, censor: gfw, add: { null_route: [dropped.example], reject: [refused.example] } }
  - { at: ${LIFT_AT}, censor: gfw, remove: { null_route: [dropped.example], reject: [refused.example] } }
`;

describe('netns lab: null routes and refused connections follow the timeline', { skip }, () => {
  let lab: NetnsLab;
  let ca: string;
  let witness: WitnessLab | undefined;
  const events: RouterEvent[] = [];
  before(async () => {
    witness = await startWitnessLab(IN_PATH, 'netns-timeline-in-path', { log: (e) => events.push(e) });
    ({ lab, ca } = witness);
  });
  after(async () => {
    await witness?.close();
  });
  // From a probe's source address (the in-path rules apply to the lab's client addresses, CLIENT_NET).
  const curl = (url: string) =>
    runCommand(
      lab.inClient([
        'curl',
        '-sS',
        '-m',
        '2',
        '--interface',
        lab.clientAddress(7),
        '--cacert',
        ca,
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        url,
      ]),
    );
  const until = (s: number) => new Promise((r) => setTimeout(r, Math.max(0, lab.startedAt + s * 1000 - Date.now())));

  it('drops SYNs and refuses connections only between the entries, without a warning', async () => {
    assert.deepEqual(lab.warnings, []);
    assert.ok(Date.now() < lab.startedAt + (DROP_AT - 1) * 1000, 'the lab came up before the first entry');
    assert.equal((await curl('https://dropped.example/')).stdout, '200', 'before the null route');
    assert.equal((await curl('https://refused.example/')).stdout, '200', 'before the reject');
    await until(DROP_AT + 0.5);
    const dropped = await curl('https://dropped.example/');
    assert.notEqual(dropped.stdout, '200');
    assert.match(dropped.stderr, /timed out|timeout/i, `a null route times out: ${dropped.stderr}`);
    const refused = await curl('https://refused.example/');
    assert.notEqual(refused.stdout, '200');
    assert.match(refused.stderr, /refused|reset/i, `a reject refuses: ${refused.stderr}`);
    assert.equal((await curl('https://open.example/')).stdout, '200', 'another name is untouched');
    await until(LIFT_AT + 0.5);
    assert.equal((await curl('https://dropped.example/')).stdout, '200', 'after the null route is lifted');
    assert.equal((await curl('https://refused.example/')).stdout, '200', 'after the reject is lifted');
    assert.deepEqual(
      events.filter((e) => e.action === 'timeline').map((e) => e.name),
      [`lab time ${DROP_AT} s`, `lab time ${LIFT_AT} s`],
    );
  });
});

// A throttle that follows the timeline: the rate limit is the router's nftables chain, the names it
// applies to the router's SNI matching; a flow throttled at 64 kbit/s moves at most 8 kB a second.
const SLOW_AT = 4;
const FAST_AT = 11;
const PAGE = 200_000;
const THROTTLED = `
name: netns-timeline-throttle
seed: 4
world:
  sites: [{ domain: slow.example, page: { bytes: ${PAGE} } }, { domain: open.example, page: { bytes: ${PAGE} } }]
  resolvers: { isp: {}, public: {} }
censors:
  - name: gfw
    layer: national
    throttle: { kbps: 64, sni_rules: ['^never\\.example$'] }
timeline:
  - { at: ${SLOW_AT}, censor: gfw, add: { throttle: { sni_rules: ['^slow\\.example$'] } } }
  - { at: ${FAST_AT}, censor: gfw, remove: { throttle: { sni_rules: ['^slow\\.example$'] } } }
`;

describe('netns lab: a throttle follows the timeline', { skip }, () => {
  let lab: NetnsLab;
  let ca: string;
  let witness: WitnessLab | undefined;
  before(async () => {
    witness = await startWitnessLab(THROTTLED, 'netns-timeline-throttle');
    ({ lab, ca } = witness);
  });
  after(async () => {
    await witness?.close();
  });
  /** Debian's curl for at most `s` seconds: its status and how many bytes of the page it got. */
  const fetchFor = async (url: string, s = 3) => {
    const r = await runCommand(
      lab.inClient(['curl', '-sS', '-m', String(s), '--cacert', ca, '-o', '/dev/null', '-w', '%{http_code} %{size_download}', url]),
    );
    const [code, bytes] = r.stdout.trim().split(' ');
    return { code, bytes: Number(bytes), stderr: r.stderr };
  };
  const until = (s: number) => new Promise((r) => setTimeout(r, Math.max(0, lab.startedAt + s * 1000 - Date.now())));

  it('slows the named site only between the entries: the whole page before and after, a fraction within 5 s while listed', async () => {
    assert.deepEqual(lab.warnings, []);
    assert.ok(Date.now() < lab.startedAt + (SLOW_AT - 1) * 1000, 'the lab came up before the first entry');
    assert.deepEqual(await fetchFor('https://slow.example/').then((r) => [r.code, r.bytes >= PAGE]), ['200', true], 'before');
    await until(SLOW_AT + 0.3);
    const slow = await fetchFor('https://slow.example/', 5);
    assert.match(slow.stderr, /timed out/i, `throttled: ${slow.bytes} bytes in 5 s`);
    // 64 kbit/s is 8 kB a second: within 5 s (the handshake's packets policed too, TCP backing off
    // after each drop) some of the page arrives, far from all of it.
    assert.ok(slow.bytes > 0 && slow.bytes < PAGE / 4, `throttled to ${slow.bytes} bytes in 5 s`);
    const open = await fetchFor('https://open.example/');
    assert.deepEqual([open.code, open.bytes >= PAGE], ['200', true], 'another site is untouched');
    await until(FAST_AT + 0.3);
    const after = await fetchFor('https://slow.example/');
    assert.deepEqual([after.code, after.bytes >= PAGE], ['200', true], `after the entry that removes it: ${after.bytes}`);
  });
});
