// Test support for packet-evidence.test.ts (not exported; run as a child process inside the test's
// server namespace): a sink server that accepts and never writes, a resolver that answers every
// A query twice (the second reply sent with IP TTL 58 and another address, as an on-path DNS
// injector would), and an on-path injector on the server's veth end that answers each client
// payload with a forged reset: port 443 gets the Henan provincial firewall's one RST+ACK (TTL 58,
// IP ID 1, DF=0, payload 01..09 00), port 8443 the GFW type II triple RST+ACK (DF=1, IP ID in
// 0x00A3-0xFE5F, seq base, base+1460, base+4380; censors.md sections 3 and 5, Clayton06).
// argv: DEVICE SERVER_IP. Prints "ready", then one JSON line per injected packet.
import net from 'node:net';
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import { openCapture } from '../probe/index.js';
import { encodeTcpPacket, frame, seqDiff, TCP_ACK, TCP_RST } from '../probe/index.js';

const [device, serverIp] = process.argv.slice(2) as [string, string];
const HENAN_PAYLOAD = Buffer.from('01020304050607080900', 'hex');

for (const port of [443, 8443]) net.createServer((s) => s.on('error', () => {})).listen(port, serverIp);

const udp = dgram.createSocket('udp4');
udp.on('message', (msg, rinfo) => {
  let q: dnsPacket.Packet;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return;
  }
  const question = q.questions?.[0];
  if (!question) return;
  const reply = (address: string | null): Buffer =>
    dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
      questions: [question],
      answers: address ? [{ type: 'A', name: question.name, ttl: 60, class: 'IN', data: address }] : [],
    });
  if (question.type !== 'A') {
    udp.send(reply(null), rinfo.port, rinfo.address);
    return;
  }
  udp.setTTL(64);
  udp.send(reply(serverIp), rinfo.port, rinfo.address, () => {
    setTimeout(() => {
      udp.setTTL(58);
      udp.send(reply('198.18.0.3'), rinfo.port, rinfo.address, () => udp.setTTL(64));
    }, 5);
  });
});
udp.bind(53, serverIp);

const cap = openCapture(device, `tcp and dst host ${serverIp} and (dst port 443 or dst port 8443)`, ({ packet: p }) => {
  const t = p.tcp!;
  if (t.payload.length === 0) return;
  const link = { srcMac: p.dstMac, dstMac: p.srcMac };
  const base = { src: p.ip.dst, dst: p.ip.src };
  const seq = t.ack;
  const ack = (t.seq + t.payload.length) >>> 0;
  const sends =
    t.dstPort === 443
      ? [{ ip: { ...base, ttl: 58, id: 1, df: false }, tcp: { seq, window: 0, payload: HENAN_PAYLOAD } }]
      : [0, 1460, 4380].map((d, i) => ({
          ip: { ...base, ttl: 101, id: 0x1234 + i * 0x111, df: true },
          tcp: { seq: (seq + d) >>> 0, window: 2000 + i, payload: Buffer.alloc(0) },
        }));
  for (const s of sends) {
    cap.send(frame(link, encodeTcpPacket(s.ip, { srcPort: t.dstPort, dstPort: t.srcPort, ack, flags: TCP_RST | TCP_ACK, ...s.tcp })));
    process.stdout.write(
      JSON.stringify({
        clientPort: t.srcPort,
        serverPort: t.dstPort,
        ttl: s.ip.ttl,
        ip_id: s.ip.id,
        df: s.ip.df,
        seq_offset: seqDiff(s.tcp.seq, seq),
        window: s.tcp.window,
        payload_hex: s.tcp.payload.toString('hex'),
      }) + '\n',
    );
  }
});

process.on('SIGTERM', () => {
  cap.close();
  process.exit(0);
});
process.stdout.write('ready\n');
