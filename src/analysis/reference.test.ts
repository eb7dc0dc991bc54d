import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { toOoniBlocking, type Measurement } from '../model/index.js';
import { fixturesDir } from '../probe/index.js';
import { analyzeMeasurement } from './measurement.js';
import { readMeasurements } from './read.js';

// The reference's branches, each reached by changing one real measurement the way real networks
// do (probe-cli internal/experiment/webconnectivity summary.go for 0.4; analysisclassic.go for 0.5).
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- real measurements edited in place, any shape
type Obj = Record<string, any>;
const real = (name: string): Obj => JSON.parse(readFileSync(join(fixturesDir, 'measurements', name), 'utf8')) as Obj;
const pair = (m: Obj): [unknown, unknown] => {
  const v = analyzeMeasurement(m as Measurement);
  return [toOoniBlocking(v), v.accessible];
};
/** A 0.4.1 measurement of a plain-HTTP page that loaded (instagram, US), made to fail as asked. */
function v04(edit: (tk: Obj) => void): Obj {
  const m = real('real-explorer/20230307142542.625294_US_webconnectivity_9215f30cf2412f49.json');
  m.input = 'http://www.instagram.com/';
  const r = m.test_keys.requests[0];
  r.request.url = 'http://www.instagram.com/';
  edit(m.test_keys);
  return m;
}

describe('web_connectivity 0.4: the recorded pair follows summary.go', () => {
  test('HTTPS page loaded: false/true', () => {
    assert.deepEqual(pair(real('real-explorer/20230307142542.625294_US_webconnectivity_9215f30cf2412f49.json')), [false, true]);
  });
  test('control failed: null/null', () => {
    assert.deepEqual(
      pair(
        v04((tk) => {
          tk.control_failure = 'generic_timeout_error';
        }),
      ),
      [null, null],
    );
  });
  test('probe and control fail the page alike: null/null (0.4 has no "down")', () => {
    const m = v04((tk) => {
      tk.requests[0].failure = 'generic_timeout_error';
      tk.requests[0].response = null;
      tk.control.http_request.failure = 'generic_timeout_error';
    });
    const v = analyzeMeasurement(m as Measurement);
    assert.deepEqual([toOoniBlocking(v), v.accessible], [null, null]);
    assert.match(v.explanation, /web_connectivity 0\.4 rule concludes null\/null/);
  });
  test('every connection failed, consistent DNS, control connected: tcp_ip', () => {
    assert.deepEqual(
      pair(
        v04((tk) => {
          for (const t of tk.tcp_connect) t.status = { success: false, failure: 'generic_timeout_error' };
          tk.requests[0].failure = 'generic_timeout_error';
        }),
      ),
      ['tcp_ip', false],
    );
  });
  test("every connection failed for the control too: still tcp_ip (0.4 does not look at the control's connections)", () => {
    assert.deepEqual(
      pair(
        v04((tk) => {
          for (const t of tk.tcp_connect) t.status = { success: false, failure: 'generic_timeout_error' };
          for (const k of Object.keys(tk.control.tcp_connect))
            tk.control.tcp_connect[k] = { status: false, failure: 'generic_timeout_error' };
          tk.requests[0].failure = 'generic_timeout_error';
        }),
      ),
      ['tcp_ip', false],
    );
  });
  test('NXDOMAIN for the probe and the control: false/true', () => {
    assert.deepEqual(
      pair(
        v04((tk) => {
          for (const q of tk.queries) {
            q.answers = null;
            q.failure = 'dns_nxdomain_error';
          }
          tk.tcp_connect = [];
          tk.requests[0].failure = 'dns_nxdomain_error';
          tk.requests[0].response = null;
          tk.control.dns = { failure: 'dns_name_error', addrs: [] };
          tk.control.tcp_connect = {};
          tk.control.http_request.failure = 'dns_lookup_error';
        }),
      ),
      [false, true],
    );
  });
  test('NXDOMAIN for the probe only: dns', () => {
    assert.deepEqual(
      pair(
        v04((tk) => {
          for (const q of tk.queries) {
            q.answers = null;
            q.failure = 'dns_nxdomain_error';
          }
          tk.tcp_connect = [];
          tk.requests[0].failure = 'dns_nxdomain_error';
          tk.requests[0].response = null;
        }),
      ),
      ['dns', false],
    );
  });
  test('a failure 0.4 does not classify, with the control fine: null/null', () => {
    assert.deepEqual(
      pair(
        v04((tk) => {
          tk.requests[0].failure = 'unknown_failure: weird';
          tk.requests[0].response = null;
        }),
      ),
      [null, null],
    );
  });
  test('connection reset with the control fine: http-failure', () => {
    assert.deepEqual(
      pair(
        v04((tk) => {
          tk.requests[0].failure = 'connection_reset';
          tk.requests[0].response = null;
        }),
      ),
      ['http-failure', false],
    );
  });
});

describe('recorded body fields stand in for a stored body that cannot be measured', () => {
  const trimmed = (recordedMatch: boolean): Obj =>
    v04((tk) => {
      const r = tk.requests[0];
      r.response.code = 200;
      r.response.body = 'hi';
      r.response.headers = { 'X-Only-Probe': '1' };
      tk.control.http_request.status_code = 200;
      tk.control.http_request.body_length = 100000;
      tk.control.http_request.title = '';
      tk.control.http_request.headers = { 'X-Only-Control': '1' };
      tk.body_length_match = recordedMatch;
      tk.body_proportion = recordedMatch ? 0.99 : 0.1;
    });
  test('a trimmed body whose recorded proportion was 0.99: the recorded match is used (accessible)', () => {
    assert.deepEqual(pair(trimmed(true)), [false, true]);
  });
  test('the same with a recorded mismatch: http-diff', () => {
    assert.deepEqual(pair(trimmed(false)), ['http-diff', false]);
  });
});

describe('what real files hold is read, never refused without a reason', () => {
  test('test_keys: null is analysed to "no verdict", with the reason', () => {
    const m = real('real-explorer/20221110100919.165568_US_webconnectivity_782abf479bf32868.json');
    m.test_keys = null;
    const [r] = [...readMeasurements(JSON.stringify(m), 'x.json')];
    assert.ok(r.ok, 'read');
    const v = analyzeMeasurement(r.measurement);
    assert.equal(v.status, 'unknown');
    assert.match(v.explanation, /test_keys is null/);
  });
  test("a bare test_keys document (the reference's .jsonc testdata) is read as web_connectivity", () => {
    const m = real('real-explorer/20221110100919.165568_US_webconnectivity_782abf479bf32868.json');
    const text = `// a comment\n${JSON.stringify(m.test_keys)}`;
    const [r] = [...readMeasurements(text, 'bare.jsonc')];
    assert.ok(r.ok, r.ok ? '' : r.error);
    assert.equal(r.measurement.test_name, 'web_connectivity');
    assert.equal(r.measurement.input, 'https://www.theguardian.com/');
    assert.deepEqual(pair(r.measurement as Obj), [false, true]);
  });
  test('an object that is neither is still refused with one line', () => {
    const [r] = [...readMeasurements('{"foo": 1}', 'x.json')];
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, /test_name is missing/);
  });
});

describe("other OONI tests get the pipeline's anomaly rule (fastpath core.py)", () => {
  const verdictOf = (name: string, edit?: (m: Obj) => void): ReturnType<typeof analyzeMeasurement> => {
    const m = real(name);
    edit?.(m);
    return analyzeMeasurement(m as Measurement);
  };
  test('http_header_field_manipulation: headers echoed unchanged -> ok; one changed -> anomaly', () => {
    const f = 'real-explorer/20221110105736.694076_ES_httpheaderfieldmanipulation_ea459e693b3d42a2.json';
    assert.equal(verdictOf(f).status, 'ok');
    const v = verdictOf(f, (m) => {
      const r = m.test_keys.requests[0];
      const echo = JSON.parse(r.response.body);
      const k = Object.keys(echo.headers_dict)[0];
      echo.headers_dict[k.toLowerCase() === k ? k.toUpperCase() : k.toLowerCase()] = echo.headers_dict[k];
      delete echo.headers_dict[k];
      r.response.body = JSON.stringify(echo);
    });
    assert.equal(v.status, 'blocked');
    assert.equal(v.mechanism, 'http.diff');
  });
  test('tor: 31 of 35 targets failing (RU) is an anomaly, 13 of 35 (US) is not (threshold 0.5)', () => {
    assert.equal(verdictOf('real-explorer/20230121235805.670038_RU_tor_e8fd37f3f4f1085f.json').status, 'blocked');
    assert.equal(verdictOf('real-explorer/20221110112405.003769_US_tor_56e03d764ee82e8f.json').status, 'ok');
  });
  test('signal: blocked backend -> anomaly; a version known to misreport -> no verdict', () => {
    assert.equal(verdictOf('real-explorer/20210415084230.511612_IR_signal_ed269d082953bf2e.json').status, 'blocked');
    assert.equal(
      verdictOf('real-explorer/20210415084230.511612_IR_signal_ed269d082953bf2e.json', (m) => {
        m.test_version = '0.2.4';
      }).status,
      'unknown',
    );
  });
  test('stunreachability: a failure is an anomaly', () => {
    const v = verdictOf('spec-examples/ts-025-stun-reachability.json', (m) => {
      m.test_name = 'stunreachability';
      m.test_keys.failure = 'generic_timeout_error';
    });
    assert.equal(v.status, 'blocked');
    assert.equal(
      verdictOf('spec-examples/ts-025-stun-reachability.json', (m) => {
        m.test_keys.failure = null;
      }).status,
      'ok',
    );
  });
  test('dnscheck: the pipeline has no anomaly rule, so no verdict, said so', () => {
    assert.match(verdictOf('spec-examples/ts-028-dnscheck.json').explanation, /no anomaly rule for dnscheck/);
  });
});

describe('web_connectivity 0.5: the control-failure and "down" branches of analysisclassic.go', () => {
  const netem = (name: string, edit: (tk: Obj) => void): Obj => {
    const m = real(`synthetic-netem-qa/${name}.json`);
    edit(m.test_keys);
    return m;
  };
  test('TLS failed for the probe and for the control: down (3.2)', () => {
    assert.deepEqual(pair(netem('badSSLWithExpiredCertificate', () => undefined)), [false, false]);
  });
  test("TLS failed for the probe, the control's handshake worked though its fetch failed: http-failure (3.3)", () => {
    assert.deepEqual(
      pair(
        netem('badSSLWithExpiredCertificate', (tk) => {
          for (const k of Object.keys(tk.control.tls_handshake))
            tk.control.tls_handshake[k] = { server_name: 'expired.badssl.com', status: true, failure: null };
        }),
      ),
      ['http-failure', false],
    );
  });
  test('control unreachable, plain-HTTP page received: null/null (1.2)', () => {
    assert.deepEqual(pair(real('synthetic-netem-qa/controlFailureWithSuccessfulHTTPWebsite.json')), [null, null]);
  });
  test('control unreachable, the lookup failed: false/true (5.1.1)', () => {
    assert.deepEqual(
      pair(
        netem('controlFailureWithSuccessfulHTTPWebsite', (tk) => {
          for (const q of tk.queries) {
            q.answers = null;
            q.failure = 'dns_nxdomain_error';
          }
          tk.tcp_connect = [];
          tk.requests = [{ ...tk.requests[0], failure: 'dns_nxdomain_error', response: null }];
        }),
      ),
      [false, true],
    );
  });
  test("the probe got NXDOMAIN, the control's lookup failed too: down (5.2); it did not fail: dns (5.4)", () => {
    assert.deepEqual(pair(real('synthetic-netem-qa/websiteDownNXDOMAIN.json')), [false, false]);
    assert.deepEqual(
      pair(
        netem('websiteDownNXDOMAIN', (tk) => {
          tk.control.dns = { failure: null, addrs: [] };
        }),
      ),
      ['dns', false],
    );
  });
});

describe('deliberate differences hold only where their reason does', () => {
  const replaced = (version: string): Obj => {
    const m = real('synthetic-netem-qa/httpDiffWithConsistentDNS.json');
    m.test_version = version;
    m.test_keys.requests[0].response.headers = { 'Content-Length': '1234', 'Content-Type': 'text/html' };
    return m;
  };
  test('size and title differ, only Content-Length shared: a replaced page for us (0.5 data)', () => {
    assert.deepEqual(pair(replaced('0.5.28')), ['http-diff', false]);
  });
  test("the same page recorded by 0.4: the reference's header rule is kept (false/true)", () => {
    assert.deepEqual(pair(replaced('0.4.3')), [false, true]);
  });
  test('a title naming the national filter is a block page even on 0.4 data', () => {
    const m = replaced('0.4.3');
    m.test_keys.requests[0].response.body = '<html><head><title>Trustpositif</title></head><body>blocked</body></html>';
    const v = analyzeMeasurement(m as Measurement);
    assert.deepEqual([toOoniBlocking(v), v.accessible, v.mechanism, v.layer], ['http-diff', false, 'http.blockpage', 'national']);
  });
});

describe('Measurement Kit (0.0.x): compare_control_experiment', () => {
  const mk = (edit: (tk: Obj) => void): Obj => {
    const m = real('synthetic-netem-qa/websiteDownTCPConnect.json');
    m.test_version = '0.0.1';
    m.software_name = 'ooniprobe-android';
    edit(m.test_keys);
    return m;
  };
  test("connections failed where the control's did too, and both fetches failed: accessible (no branch applies)", () => {
    assert.deepEqual(pair(mk(() => undefined)), [false, true]);
  });
  test('control failed: null/null', () => {
    assert.deepEqual(
      pair(
        mk((tk) => {
          tk.control_failure = 'connection_reset';
        }),
      ),
      [null, null],
    );
  });
});
