// The benchmarks' 1,000-target world: SITES sites over https and http, behind a regional and a
// national censor with every mechanism (shared by lab-eval and netns-lab, so both measure one world).
import type { Scenario } from '../src/model/index.js';

export function benchScenario(SITES: number): Scenario {
  // Throttled sites serve 64 KiB, so that 8 kbps really makes them fail within the budget.
  const sites = Array.from({ length: SITES }, (_, i) => ({
    domain: `s${String(i).padStart(4, '0')}.bench.example`,
    ...(i % 20 === 1 ? { page: { bytes: 65536 } } : {}),
  }));
  const pick = (k: (i: number) => boolean) => sites.filter((_, i) => k(i)).map((s) => `^${s.domain.replace(/\./g, '\\.')}$`);
  return {
    name: 'bench-1000',
    seed: 1,
    world: { sites, resolvers: { isp: {}, public: {} }, helper: true },
    censors: [
      {
        name: 'henan',
        layer: 'regional',
        sni_reset: { rules: pick((i) => i % 10 === 4) },
        http_reset: { host_rules: pick((i) => i % 10 === 4) },
      },
      {
        name: 'gfw',
        layer: 'national',
        dns_injection: { rules: pick((i) => i % 10 === 5), injectors: 2, lead_ms: 20 },
        sni_reset: { rules: pick((i) => i % 10 === 2 || i % 10 === 3) },
        http_reset: { host_rules: pick((i) => i % 10 === 2 || i % 10 === 3) },
        null_route: sites.filter((_, i) => i % 20 === 0).map((s) => s.domain),
        throttle: { sni_rules: pick((i) => i % 20 === 1), host_rules: pick((i) => i % 20 === 1), kbps: 8 },
      },
    ],
  };
}
