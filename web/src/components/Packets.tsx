// The packets that ended each failed step (`measure --capture`) and the injectors' hops (`locate`).
// All values are hostile data and are rendered as text nodes only.
import type { CapturedStep, HopRow } from '../packets.js';

const TRIGGER: Record<string, string> = {
  tls_handshake: 'the ClientHello',
  http_request: 'the request',
  tcp_connect: 'the first SYN',
  dns: 'the query',
};

export function CapturedPackets({ steps, hops, evidence }: { steps: CapturedStep[]; hops: HopRow[]; evidence: string[] }) {
  if (steps.length === 0 && hops.length === 0) return null;
  return (
    <section class="packets">
      <h2>Captured packets</h2>
      <p class="note">
        The packets that ended each failed step, as the probe's network interface saw them. Times are in ms after the trigger left; seq/ack
        of an incoming packet are relative to the next byte the probe expected and would send.
      </p>
      {steps.map((s) => (
        <StepPackets key={s.ref} s={s} evidence={evidence} />
      ))}
      {hops.length > 0 && <InjectorHops hops={hops} />}
    </section>
  );
}

/** One failed step's packets. */
function StepPackets({ s, evidence }: { s: CapturedStep; evidence: string[] }) {
  return (
    <table class="packets" data-ref={s.ref}>
      <caption>
        {s.operation} {s.query ? `${s.query} ` : ''}
        {s.address}
        {s.failure ? ` — ${s.failure}` : ''} · trigger ({TRIGGER[s.operation] ?? 'the trigger'}) at {s.triggerMs} · {s.packets.length}{' '}
        packet
        {s.packets.length === 1 ? '' : 's'} <code class="ref">{s.ref}</code>
        {evidence.includes(s.ref) && <strong class="tag tag-evidence">evidence</strong>}
      </caption>
      <thead>
        <tr>
          <th scope="col">dir</th>
          <th scope="col">ms</th>
          <th scope="col">from → to</th>
          <th scope="col">TTL</th>
          <th scope="col">IP ID</th>
          <th scope="col">DF</th>
          <th scope="col">flags</th>
          <th scope="col">window</th>
          <th scope="col">seq</th>
          <th scope="col">ack</th>
          <th scope="col">TCP hdr</th>
          <th scope="col">payload</th>
        </tr>
      </thead>
      <tbody>
        {s.packets.map((p, i) => (
          <tr key={i}>
            <td>{p.dir}</td>
            <td>{p.tMs}</td>
            <td>
              {p.from} → {p.to}
            </td>
            <td>{p.ttl}</td>
            <td>{p.ipId}</td>
            <td>{p.df}</td>
            <td>{p.flags}</td>
            <td>{p.window}</td>
            <td>{p.seqRel}</td>
            <td>{p.ackRel}</td>
            <td>{p.tcpHeader}</td>
            <td class="payload">
              <code>{p.payload}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function InjectorHops({ hops }: { hops: HopRow[] }) {
  return (
    <table class="packets hops">
      <caption>Injector hops (TTL-limited probing)</caption>
      <thead>
        <tr>
          <th scope="col">step</th>
          <th scope="col">endpoint</th>
          <th scope="col">hop</th>
        </tr>
      </thead>
      <tbody>
        {hops.map((h) => (
          <tr key={h.ref} data-ref={h.ref}>
            <td>{h.operation}</td>
            <td>{h.address}</td>
            <td>{h.hop}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
