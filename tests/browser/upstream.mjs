// A test upstream on loopback: answers every A question with 192.0.2.1 and every other
// question with NOERROR and no records. Real UDP, so winsink forwards to it as to any
// resolver.
import dgram from "node:dgram";

/** Starts the upstream on 127.0.0.1:0; resolves to { port, asked: Map(name → count), close }. */
export function startUpstream() {
  const asked = new Map();
  const sock = dgram.createSocket("udp4");
  sock.on("message", (msg, peer) => {
    const reply = answer(msg, asked);
    if (reply) sock.send(reply, peer.port, peer.address);
  });
  return new Promise((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(0, "127.0.0.1", () => {
      resolve({ port: sock.address().port, asked, close: () => sock.close() });
    });
  });
}

function answer(msg, asked) {
  if (msg.length < 12 || (msg[2] & 0x80) !== 0 || msg.readUInt16BE(4) !== 1) return null;
  // The question: labels up to the root, then type and class.
  let at = 12;
  const labels = [];
  while (at < msg.length && msg[at] !== 0) {
    const len = msg[at];
    if (len > 63 || at + 1 + len > msg.length) return null;
    labels.push(msg.toString("latin1", at + 1, at + 1 + len).toLowerCase());
    at += 1 + len;
  }
  at += 1;
  if (at + 4 > msg.length) return null;
  const qtype = msg.readUInt16BE(at);
  const question = msg.subarray(12, at + 4);
  const name = labels.join(".");
  asked.set(name, (asked.get(name) || 0) + 1);

  const header = Buffer.alloc(12);
  msg.copy(header, 0, 0, 2); // id
  header[2] = 0x80 | (msg[2] & 0x01); // QR, and RD as asked
  header[3] = 0x80; // RA, NOERROR
  header.writeUInt16BE(1, 4);
  const records = [];
  if (qtype === 1) {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the question's name
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6); // TTL
    rr.writeUInt16BE(4, 10);
    Buffer.from([192, 0, 2, 1]).copy(rr, 12);
    records.push(rr);
  }
  header.writeUInt16BE(records.length, 6);
  return Buffer.concat([header, question, ...records]);
}
