// The ground truth: what the scenario's world and censors do to one target, computed from the
// same Policy the running lab uses (so truth and behaviour cannot drift apart), unless the target
// carries an explicit `expect`, which overrides field by field.
import type { BlockingClass, Layer, Mechanism, Scenario, SiteSpec, TargetSpec } from '../model/index.js';
import type { Policy } from './policy.js';
import { RuleSet } from './rules.js';

export interface Truth {
  blocking: BlockingClass | false | null;
  accessible: boolean | null;
  mechanism: Mechanism | null; // null: no verdict is possible (no control over plain HTTP)
  layer: Layer | null;
}

const OK: Truth = { blocking: false, accessible: true, mechanism: 'none', layer: null };
const UNKNOWN: Truth = { blocking: null, accessible: null, mechanism: null, layer: null };
const DOWN: Truth = { blocking: false, accessible: false, mechanism: 'none', layer: null };
const BROKEN: Truth = { blocking: 'http-failure', accessible: false, mechanism: 'none', layer: null };
const CAPTCHA: Truth = { blocking: 'http-diff', accessible: false, mechanism: 'http.diff', layer: 'unknown' };
const blocked = (blocking: BlockingClass, mechanism: Mechanism, layer: Layer): Truth => ({ blocking, accessible: false, mechanism, layer });

/** The targets of a scenario: the listed ones, or every site over https and over http. */
export function scenarioTargets(s: Scenario): TargetSpec[] {
  if (s.targets) return s.targets;
  const out: TargetSpec[] = [];
  for (const site of s.world.sites) {
    if (site.https !== false) out.push({ url: `https://${site.domain}/` });
    if (site.http !== false) out.push({ url: `http://${site.domain}/` });
  }
  return out;
}

/** The truth the lab computes for each target, ignoring `expect` overrides (for checking them). */
export function computedTruths(s: Scenario, policy: Policy): Array<{ url: string; truth: Truth }> {
  const addrs = new Map(s.world.sites.map((site) => [site.domain, site.addresses ?? []]));
  const model = new TruthModel(s, policy, (d) => addrs.get(d) ?? []);
  return scenarioTargets(s).map((t) => ({ url: t.url, truth: model.truthOf({ url: t.url }) }));
}

export class TruthModel {
  private readonly sites: Map<string, SiteSpec>;
  private readonly isp: Array<[RuleSet, Truth]>;
  private readonly mitm: RuleSet;
  constructor(
    private readonly scenario: Scenario,
    private readonly policy: Policy,
    private readonly addressesOf: (domain: string) => string[],
  ) {
    this.sites = new Map(scenario.world.sites.map((s) => [s.domain, s]));
    const r = scenario.world.resolvers.isp;
    this.mitm = new RuleSet(r.mitm ?? []);
    this.isp = [
      [new RuleSet(r.nxdomain ?? []), blocked('dns', 'dns.nxdomain', 'isp')],
      [new RuleSet(r.servfail ?? []), blocked('dns', 'dns.servfail', 'isp')],
      [new RuleSet(r.bogon ?? []), blocked('dns', 'dns.bogon', 'isp')],
      [new RuleSet(r.localhost ?? []), blocked('dns', 'dns.bogon', 'isp')],
      // A name that does not exist resolves to an address where nothing listens: a forged answer.
      [new RuleSet(r.ghost ?? []), blocked('dns', 'dns.injection', 'isp')],
      [new RuleSet(r.nodata ?? []), blocked('dns', 'dns.nxdomain', 'isp')],
    ];
  }

  /** What the ISP resolver itself does to a name (before any genuine answer), or null. */
  ispResolverTruth(name: string): Truth | null {
    for (const [rules, t] of this.isp) if (rules.matches(name)) return t;
    return null;
  }

  truthOf(target: TargetSpec): Truth {
    const computed = this.compute(target.url, 0);
    return { ...computed, ...(target.expect ?? {}) } as Truth;
  }

  private compute(url: string, depth: number): Truth {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return BROKEN;
    }
    const host = u.hostname.toLowerCase();
    // DNS: injectors race ahead of every genuine answer; then the ISP resolver's own behaviour.
    const inj = this.policy.dnsInjectors(host);
    if (inj.length) return blocked('dns', 'dns.injection', inj[0]!.layer);
    const isp = this.ispResolverTruth(host);
    if (isp) return isp;
    const site = this.sites.get(host);
    if (!site || site.down === 'nxdomain' || site.down === 'noaddrs' || site.down === 'localhost') return DOWN;
    const https = u.protocol === 'https:';
    if ((https && site.https === false) || (!https && site.http === false)) return DOWN;
    // TCP: a null route drops the SYN before any other censor sees a byte.
    const nr = this.policy.nullRouter(site.domain, this.addressesOf(site.domain));
    if (nr) return blocked('tcp_ip', 'tcp.timeout', nr.layer);
    const rj = this.policy.rejecter(site.domain, this.addressesOf(site.domain));
    if (rj) return blocked('tcp_ip', 'tcp.refused', rj.layer);
    if (site.down) return DOWN;
    // The ISP's TLS-intercepting box answers instead of the site: over HTTPS its certificate fails.
    if (https && this.mitm.matches(host)) return blocked('dns', 'tls.mitm', 'isp');
    const action = https ? this.policy.onClientHello(host) : this.policy.onHttpRequest(host, u.pathname + u.search);
    switch (action.kind) {
      case 'reset':
        return blocked('http-failure', action.mechanism, action.censor.layer);
      case 'blockpage':
        return blocked('http-diff', 'http.blockpage', action.censor.layer);
      case 'throttle':
        return blocked('http-failure', 'throttle', action.censor.layer);
      case 'pass':
        break;
    }
    if (https && site.cert && site.cert !== 'valid') return DOWN;
    // A CDN challenge served to everyone but the helper: over HTTPS OONI (and wallscope) count the
    // completed handshake as reachable; over HTTP the page differs from the control's (http-diff),
    // with no censor to blame (layer unknown).
    if (site.captcha) {
      if (https) return OK;
      if (!this.scenario.world.helper) return UNKNOWN;
      return CAPTCHA;
    }
    if (site.redirect !== undefined) {
      if (depth >= 10) return DOWN;
      let next: string;
      try {
        next = new URL(site.redirect, url).toString();
      } catch {
        // An unusable Location (webconnectivityqa redirectWithBrokenLocation*): OONI's class is
        // http-failure (http_invalid_redirect_location_host), though no censor is involved.
        return BROKEN;
      }
      const after = this.compute(next, depth + 1);
      // OONI's classes for a failure met while following a redirect: DNS stays 'dns', a TCP
      // failure becomes 'http-failure' (webconnectivityqa redirectWith...AndThenTimeout).
      return after.blocking === 'tcp_ip' ? { ...after, blocking: 'http-failure' } : after;
    }
    // Without a test helper there is nothing to compare a plain-HTTP page with (the reference
    // says blocking null); over HTTPS a valid certificate is enough to call it reachable.
    if (!https && !this.scenario.world.helper) return UNKNOWN;
    return OK;
  }
}
