import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeFrame,
  decodeIpv4,
  encodeTcpPacket,
  encodeUdpPacket,
  forwardedTcpCopy,
  frame,
  internetChecksum,
  seqDiff,
  TCP_ACK,
  TCP_RST,
  tcpFlagNames,
} from './packet.js';

const link = { srcMac: '02:00:00:00:00:01', dstMac: '02:00:00:00:00:02' };

describe('encodeTcpPacket(ip, tcp) / decodeFrame(b)', () => {
  it('round-trips every field of a forged RST+ACK with its 10-byte payload', () => {
    const payload = Buffer.from('01020304050607080900', 'hex');
    const p = encodeTcpPacket(
      { src: '198.19.1.1', dst: '198.18.128.1', ttl: 58, id: 1, df: false },
      { srcPort: 443, dstPort: 40000, seq: 0xfffffff0, ack: 12345, flags: TCP_RST | TCP_ACK, window: 1980, payload },
    );
    const d = decodeFrame(frame(link, p))!;
    assert.equal(d.srcMac, link.srcMac);
    assert.equal(d.dstMac, link.dstMac);
    assert.deepEqual(
      { ...d.ip },
      { src: '198.19.1.1', dst: '198.18.128.1', ttl: 58, id: 1, df: false, protocol: 6, headerLength: 20, totalLength: 50 },
    );
    assert.equal(d.tcp!.seq, 0xfffffff0);
    assert.equal(d.tcp!.ack, 12345);
    assert.equal(tcpFlagNames(d.tcp!.flags), 'RST+ACK');
    assert.equal(d.tcp!.window, 1980);
    assert.equal(d.tcp!.headerLength, 20);
    assert.deepEqual(d.tcp!.payload, payload);
    // A correct header checksum sums to zero (RFC 1071).
    assert.equal(internetChecksum(p, 0, 20), 0);
  });
  it('forwardedTcpCopy: TTL - 1 and both checksums recomputed (also when the capture held an unfilled one), null when the TTL expires', () => {
    const orig = encodeTcpPacket(
      { src: '198.18.128.1', dst: '198.19.1.1', ttl: 64, id: 9, df: true },
      { srcPort: 40000, dstPort: 443, seq: 1, ack: 2, flags: TCP_ACK, window: 500, payload: Buffer.from('hello') },
    );
    const partial = Buffer.concat([orig, Buffer.alloc(6)]); // an unfilled TCP checksum, Ethernet padding
    partial.writeUInt16BE(0x1234, 36);
    const fwd = forwardedTcpCopy(partial)!;
    assert.equal(fwd.length, orig.length);
    assert.equal(fwd[8], 63);
    assert.equal(internetChecksum(fwd, 0, 20), 0);
    assert.equal(fwd.readUInt16BE(36), forwardedTcpCopy(orig)!.readUInt16BE(36));
    const pseudo = Buffer.concat([fwd.subarray(12, 20), Buffer.from([0, 6, 0, fwd.length - 20]), fwd.subarray(20)]);
    assert.equal(internetChecksum(pseudo), 0);
    assert.equal(decodeIpv4(fwd)!.tcp!.payload.toString(), 'hello');
    const dying = Buffer.from(orig);
    dying[8] = 1;
    assert.equal(forwardedTcpCopy(dying), null);
    assert.equal(forwardedTcpCopy(orig.subarray(0, 30)), null);
  });
  it('fills a UDP checksum that verifies over the pseudo-header', () => {
    const p = encodeUdpPacket(
      { src: '198.19.0.2', dst: '198.18.128.9', ttl: 64, id: 7, df: true },
      { srcPort: 53, dstPort: 5353, payload: Buffer.from('abc') },
    );
    const d = decodeIpv4(p)!;
    assert.equal(d.udp!.payload.toString(), 'abc');
    assert.equal(d.ip.df, true);
    const pseudo = Buffer.concat([p.subarray(12, 20), Buffer.from([0, 17, 0, p.length - 20]), p.subarray(20)]);
    assert.equal(internetChecksum(pseudo), 0);
  });
  it('gives null for truncated, non-IPv4 and inconsistent frames instead of throwing', () => {
    const good = frame(
      link,
      encodeTcpPacket(
        { src: '1.2.3.4', dst: '5.6.7.8', ttl: 1, id: 0, df: false },
        { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 2, window: 0 },
      ),
    );
    for (let n = 0; n < good.length; n++) assert.equal(decodeFrame(good.subarray(0, n)), null, `truncated at ${n}`);
    const arp = Buffer.from(good);
    arp.writeUInt16BE(0x0806, 12);
    assert.equal(decodeFrame(arp), null);
    const badDoff = Buffer.from(good);
    badDoff[14 + 20 + 12] = 0x10; // data offset 4 bytes < 20
    assert.equal(decodeFrame(badDoff), null);
    assert.throws(
      () =>
        encodeTcpPacket(
          { src: '1.2.3', dst: '5.6.7.8', ttl: 1, id: 0, df: false },
          { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 2, window: 0 },
        ),
      /not an IPv4 address/,
    );
  });
  it('seqDiff() is modular', () => {
    assert.equal(seqDiff(5, 0xfffffffb), 10);
    assert.equal(seqDiff(0xfffffffb, 5), -10);
  });
});
