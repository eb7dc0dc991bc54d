// The `platform:` section of a scenario (scenarios/README.md "Platform"), read with the same
// located validation as the rest of the file (src/lab/scenario.ts's Reader).
import { isIP } from 'node:net';
import { isMap, isScalar, type Node } from 'yaml';
import type {
  DelaySpec,
  ModerationRuleSpec,
  PlatformAccountSpec,
  PlatformCommentSpec,
  PlatformPostSpec,
  PlatformSpec,
} from '../model/index.js';
import type { Reader } from './scenario.js';

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const LAB_ADDRESS_RE = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const DAY = 86400 * 365;

/** `5` (fixed), `{min, max}` (uniform) or `{mean, max}` (exponential cut at max), in seconds. */
function readDelay(r: Reader, node: Node, path: string): DelaySpec | undefined {
  if (isScalar(node)) {
    const s = r.num(node, path, 0, DAY);
    return s === undefined ? undefined : { kind: 'fixed', s };
  }
  if (!isMap(r.deref(node))) {
    r.fail(node, path, 'expected seconds, {min, max} (uniform) or {mean, max} (exponential)');
    return undefined;
  }
  const m = r.map(node, path, ['min', 'max', 'mean']);
  if (!m) return undefined;
  if (m.has('mean')) {
    if (m.has('min')) r.fail(m.get('min'), `${path}.min`, 'an exponential delay takes mean and max, not min');
    const mean = r.num(m.get('mean'), `${path}.mean`, 0, DAY);
    const max = m.has('max') ? r.num(m.get('max'), `${path}.max`, 0, DAY) : mean === undefined ? undefined : mean * 10;
    if (mean === undefined || max === undefined) return undefined;
    if (max < mean) r.fail(m.get('max'), `${path}.max`, `max ${max} is below the mean ${mean}`);
    return { kind: 'exponential', mean, max };
  }
  if (!m.has('min') || !m.has('max')) {
    r.fail(node, path, 'a uniform delay needs min and max (or give mean for an exponential one)');
    return undefined;
  }
  const min = r.num(m.get('min'), `${path}.min`, 0, DAY);
  const max = r.num(m.get('max'), `${path}.max`, 0, DAY);
  if (min === undefined || max === undefined) return undefined;
  if (max < min) r.fail(m.get('max'), `${path}.max`, `max ${max} is below min ${min}`);
  return { kind: 'uniform', min, max };
}

/** A word list: `[a, b]`, or one string where `+` joins the words of a combination (`a+b`). */
function readWords(r: Reader, node: Node, path: string): string[] {
  // YAML reads 1989 as a number: a word all the same.
  const word = (n: Node, at: string) => (isScalar(n) && typeof n.value === 'number' ? String(n.value) : (r.str(n, at) ?? ''));
  const words = isScalar(node)
    ? word(node, path)
        .split('+')
        .map((w) => w.trim())
    : r.seq(node, path).map((n, i) => word(n, `${path}[${i}]`).trim());
  if (words.length === 0 || words.some((w) => w.length === 0)) {
    r.fail(node, path, 'expected one or more non-empty words (a combination is a list, or words joined by +)');
    return [];
  }
  return words;
}

function readRule(r: Reader, node: Node, path: string): ModerationRuleSpec | undefined {
  const m = r.map(node, path, ['words', 'action', 'delay_s'], ['words']);
  if (!m) return undefined;
  const words = readWords(r, m.get('words')!, `${path}.words`);
  const action = m.has('action') ? r.oneOf(m.get('action'), `${path}.action`, ['remove', 'shadow'] as const) : 'remove';
  const rule: ModerationRuleSpec = { words, action: action ?? 'remove' };
  if (m.has('delay_s')) rule.delay = readDelay(r, m.get('delay_s')!, `${path}.delay_s`);
  return rule;
}

function readComment(r: Reader, node: Node, path: string): PlatformCommentSpec | undefined {
  const m = r.map(node, path, ['account', 'text', 'at'], ['account', 'text']);
  if (!m) return undefined;
  const account = r.str(m.get('account'), `${path}.account`);
  const text = r.str(m.get('text'), `${path}.text`);
  if (account === undefined || text === undefined) return undefined;
  const c: PlatformCommentSpec = { account, text };
  if (m.has('at')) c.at = r.num(m.get('at'), `${path}.at`, 0, DAY);
  return c;
}

function readPost(r: Reader, node: Node, path: string): PlatformPostSpec | undefined {
  if (isScalar(node)) {
    const text = r.str(node, path);
    return text === undefined ? undefined : { text };
  }
  const m = r.map(node, path, ['text', 'at', 'delete_at', 'comments'], ['text']);
  if (!m) return undefined;
  const text = r.str(m.get('text'), `${path}.text`);
  if (text === undefined) return undefined;
  const p: PlatformPostSpec = { text };
  if (m.has('at')) p.at = r.num(m.get('at'), `${path}.at`, 0, DAY);
  if (m.has('delete_at')) {
    p.delete_at = r.num(m.get('delete_at'), `${path}.delete_at`, 0, DAY);
    if (p.delete_at !== undefined && p.delete_at < (p.at ?? 0))
      r.fail(m.get('delete_at'), `${path}.delete_at`, `the author deletes it at ${p.delete_at} s, before it is posted at ${p.at ?? 0} s`);
  }
  if (m.has('comments'))
    p.comments = r
      .seq(m.get('comments'), `${path}.comments`)
      .map((n, i) => readComment(r, n, `${path}.comments[${i}]`))
      .filter((c): c is PlatformCommentSpec => c !== undefined);
  return p;
}

function readAccount(r: Reader, node: Node, path: string): PlatformAccountSpec | undefined {
  const m = r.map(node, path, ['name', 'address', 'token', 'posts'], ['name']);
  if (!m) return undefined;
  const name = r.str(m.get('name'), `${path}.name`);
  if (name === undefined) return undefined;
  if (!NAME_RE.test(name)) r.fail(m.get('name'), `${path}.name`, `'${name}' is not an account name (letters, digits, _ . -; at most 64)`);
  const a: PlatformAccountSpec = { name };
  if (m.has('address')) {
    const addr = r.str(m.get('address'), `${path}.address`);
    if (addr !== undefined && isIP(addr) === 0) r.fail(m.get('address'), `${path}.address`, `'${addr}' is not an IP address`);
    else a.address = addr;
  }
  if (m.has('token')) a.token = r.str(m.get('token'), `${path}.token`);
  if (m.has('posts'))
    a.posts = r
      .seq(m.get('posts'), `${path}.posts`)
      .map((n, i) => readPost(r, n, `${path}.posts[${i}]`))
      .filter((p): p is PlatformPostSpec => p !== undefined);
  return a;
}

export function readPlatform(r: Reader, node: Node, path: string): PlatformSpec | undefined {
  const m = r.map(node, path, ['name', 'port', 'address', 'accounts', 'moderation', 'rate_limit', 'errors'], ['accounts']);
  if (!m) return undefined;
  const spec: PlatformSpec = { accounts: [] };
  if (m.has('name')) spec.name = r.str(m.get('name'), `${path}.name`);
  if (m.has('port')) spec.port = r.num(m.get('port'), `${path}.port`, 0, 65535, true);
  if (m.has('address')) {
    const a = r.str(m.get('address'), `${path}.address`);
    if (a !== undefined && (!LAB_ADDRESS_RE.test(a) || a.split('.').some((x) => Number(x) > 255)))
      r.fail(m.get('address'), `${path}.address`, `'${a}' is not a lab address (loopback mode uses 127.0.0.0/8)`);
    else spec.address = a;
  }
  if (m.has('rate_limit')) spec.rate_limit = r.num(m.get('rate_limit'), `${path}.rate_limit`, 0.01, 1e6);
  if (m.has('errors')) spec.errors = r.num(m.get('errors'), `${path}.errors`, 0, 0.9);
  const accountNodes = r.seq(m.get('accounts'), `${path}.accounts`);
  const names = new Map<string, number>();
  accountNodes.forEach((n, i) => {
    const a = readAccount(r, n, `${path}.accounts[${i}]`);
    if (!a) return;
    if (names.has(a.name))
      r.fail(n, `${path}.accounts[${i}].name`, `account '${a.name}' is declared twice (first at accounts[${names.get(a.name)}])`);
    names.set(a.name, i);
    spec.accounts.push(a);
  });
  spec.accounts.forEach((a, i) =>
    (a.posts ?? []).forEach((p, j) =>
      (p.comments ?? []).forEach((c, k) => {
        if (!names.has(c.account))
          r.fail(
            accountNodes[i],
            `${path}.accounts[${i}].posts[${j}].comments[${k}].account`,
            `no account '${c.account}' on this platform`,
          );
      }),
    ),
  );
  if (m.has('moderation')) {
    const p = `${path}.moderation`;
    const mm = r.map(m.get('moderation'), p, ['rules', 'keywords', 'shadow_keywords', 'delay_s', 'ban_after']);
    if (mm) {
      const rules: ModerationRuleSpec[] = [];
      if (mm.has('rules'))
        r.seq(mm.get('rules'), `${p}.rules`).forEach((n, i) => {
          const rule = readRule(r, n, `${p}.rules[${i}]`);
          if (rule) rules.push(rule);
        });
      for (const [key, action] of [
        ['keywords', 'remove'],
        ['shadow_keywords', 'shadow'],
      ] as const)
        if (mm.has(key))
          r.seq(mm.get(key), `${p}.${key}`).forEach((n, i) => {
            const words = readWords(r, n, `${p}.${key}[${i}]`);
            if (words.length) rules.push({ words, action });
          });
      spec.moderation = { rules };
      if (mm.has('delay_s')) spec.moderation.delay = readDelay(r, mm.get('delay_s')!, `${p}.delay_s`);
      if (mm.has('ban_after')) spec.moderation.ban_after = r.num(mm.get('ban_after'), `${p}.ban_after`, 1, 1e6, true);
    }
  }
  return spec;
}
