// Test support: ClientHellos that Node's TLS stack will not send by itself (an extra extension such
// as ESNI's 0xffce), built from a real one by appending the extension and fixing the three lengths.

/** `hello` (one TLS record holding a whole ClientHello) with extension `type` appended. */
export function withExtension(hello: Buffer, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  if (hello[0] !== 0x16 || hello[5] !== 0x01) throw new Error('withExtension: not a ClientHello record');
  const body = hello.subarray(9);
  let p = 2 + 32;
  p += 1 + body[p]!;
  p += 2 + body.readUInt16BE(p);
  p += 1 + body[p]!;
  const extLen = body.readUInt16BE(p);
  const ext = Buffer.alloc(4 + data.length);
  ext.writeUInt16BE(type, 0);
  ext.writeUInt16BE(data.length, 2);
  data.copy(ext, 4);
  const out = Buffer.concat([hello.subarray(0, 9 + p + 2 + extLen), ext, hello.subarray(9 + p + 2 + extLen)]);
  out.writeUInt16BE(extLen + ext.length, 9 + p);
  const hsLen = out.length - 9;
  out[6] = (hsLen >> 16) & 0xff;
  out.writeUInt16BE(hsLen & 0xffff, 7);
  out.writeUInt16BE(out.length - 5, 3);
  return out;
}
