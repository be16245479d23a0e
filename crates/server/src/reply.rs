//! An upstream's answer, kept as wire bytes so that it can be replayed to any client
//! that asks the same question: from the forwarder directly, or from the cache.
//!
//! The upstream's OPT record is taken off (each client gets its own, or none if it sent
//! none) but its Extended DNS Errors are kept and passed on. Every other byte is the
//! upstream's: flags, RCODE, all three sections, CNAME chains, compression. Replaying
//! copies the bytes, writes the client's id and question (same length, the client's letter
//! case) and its RD and CD bits, clears AD for a client that asked for neither AD nor DO
//! (RFC 6840 §5.7), counts the TTLs down, and truncates with TC when the client's UDP
//! limit is too small.

use std::sync::Arc;

use hickory_proto::op::Message;
use winsink_policy::CacheTtls;

use crate::wire::{
    self, name_to_text, read_record, write_opt, EdnsInfo, Query, EDNS_OPTION_EDE, FLAG_AD, FLAG_CD,
    FLAG_RD, FLAG_TC, HEADER_LEN, TYPE_CNAME, TYPE_DNAME, TYPE_OPT, TYPE_SOA,
};

/// An upstream answer ready to replay.
#[derive(Debug)]
pub(crate) struct Reply {
    /// Header, question and records, without OPT.
    wire: Box<[u8]>,
    question_end: usize,
    /// Offsets of every record's TTL field.
    ttl_at: Box<[u16]>,
    /// Upper bits of the upstream's RCODE (from its OPT record).
    ext_rcode: u8,
    /// The upstream's EDE options, as raw option bytes.
    ede: Box<[u8]>,
    /// Targets of the CNAME and DNAME records in the answer section, as text.
    pub(crate) chain: Box<[Box<str>]>,
    /// Seconds this answer may be cached; 0 means not at all.
    pub(crate) lifetime: u32,
    /// The upstream that sent it (`udp://192.0.2.1:53`).
    pub(crate) upstream: Arc<str>,
}

/// Why an upstream's bytes are not a usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReplyError {
    /// The bytes are not a well-formed DNS response.
    #[error("malformed upstream answer (byte {0})")]
    Malformed(usize),
}

impl Reply {
    /// Takes an upstream answer apart. `settings` bound the cache lifetime.
    pub(crate) fn from_upstream(
        mut bytes: Vec<u8>,
        upstream: Arc<str>,
        settings: &CacheTtls,
    ) -> Result<Self, ReplyError> {
        if bytes.len() < HEADER_LEN || bytes.len() > usize::from(u16::MAX) {
            return Err(ReplyError::Malformed(0));
        }
        let count = |b: &[u8], i: usize| u16::from_be_bytes([b[4 + 2 * i], b[5 + 2 * i]]);
        if count(&bytes, 0) != 1 {
            return Err(ReplyError::Malformed(4));
        }
        let question_end = read_question_end(&bytes).ok_or(ReplyError::Malformed(HEADER_LEN))?;
        let (an, ns, ar) = (count(&bytes, 1), count(&bytes, 2), count(&bytes, 3));

        let mut records = Vec::with_capacity(usize::from(an) + usize::from(ns) + usize::from(ar));
        let mut pos = question_end;
        let mut opt = None;
        for i in 0..(u32::from(an) + u32::from(ns) + u32::from(ar)) {
            let rec = read_record(&bytes, pos).ok_or(ReplyError::Malformed(pos))?;
            let section = if i < u32::from(an) {
                1
            } else if i < u32::from(an) + u32::from(ns) {
                2
            } else {
                3
            };
            if rec.rtype == TYPE_OPT && section == 3 {
                if opt.is_some() {
                    return Err(ReplyError::Malformed(pos));
                }
                opt = Some(rec);
            } else {
                records.push((section, rec));
            }
            pos = rec.rdata.1;
        }
        bytes.truncate(pos);

        let mut ext_rcode = 0;
        let mut ede = Vec::new();
        if let Some(o) = opt {
            ext_rcode = (o.ttl >> 24) as u8;
            ede = ede_options(&bytes, &o);
            if o.rdata.1 != bytes.len() {
                // The OPT sits between other additional records; cutting its bytes out
                // would break compression pointers into the records after it. Re-encode
                // the message without it (rare: servers put OPT last) and start over.
                let mut m =
                    Message::from_vec(&bytes).map_err(|_| ReplyError::Malformed(o.start))?;
                m.edns = None;
                let bytes = m.to_vec().map_err(|_| ReplyError::Malformed(o.start))?;
                let mut reply = Self::from_upstream(bytes, upstream, settings)?;
                reply.ext_rcode = ext_rcode;
                reply.ede = ede.into_boxed_slice();
                return Ok(reply);
            }
            bytes.truncate(o.start);
            let arcount = count(&bytes, 3) - 1;
            bytes[10..12].copy_from_slice(&arcount.to_be_bytes());
        }

        let chain = cname_chain(&bytes, &records);
        let lifetime = cache_lifetime(&mut bytes, &records, an, settings);
        Ok(Self {
            question_end,
            ttl_at: records.iter().map(|(_, r)| r.ttl_at as u16).collect(),
            wire: bytes.into_boxed_slice(),
            ext_rcode,
            ede: ede.into_boxed_slice(),
            chain,
            lifetime,
            upstream,
        })
    }

    /// The full 12-bit RCODE.
    pub(crate) fn rcode(&self) -> u16 {
        wire::header_rcode(&self.wire) | (u16::from(self.ext_rcode) << 4)
    }

    /// The header's flags word.
    pub(crate) fn flags(&self) -> u16 {
        u16::from_be_bytes([self.wire[2], self.wire[3]])
    }

    /// The question as the upstream echoed it.
    pub(crate) fn question(&self) -> &[u8] {
        &self.wire[HEADER_LEN..self.question_end]
    }

    /// Writes the answer for `q` into `out`, `elapsed` seconds after it was received.
    /// `limit` is the largest size the client accepts (its UDP limit, or 65535 on TCP).
    pub(crate) fn write(
        &self,
        q: &Query<'_>,
        elapsed: u32,
        payload: u16,
        limit: usize,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.extend_from_slice(&self.wire);
        out[0..2].copy_from_slice(&q.packet[0..2]);
        let client_q = q.question();
        if client_q.len() == self.question_end - HEADER_LEN {
            out[HEADER_LEN..self.question_end].copy_from_slice(client_q);
        }
        let mut flags = u16::from_be_bytes([out[2], out[3]]);
        flags = (flags & !(FLAG_RD | FLAG_CD | FLAG_TC)) | (q.flags & (FLAG_RD | FLAG_CD));
        if q.flags & FLAG_AD == 0 && !q.dnssec_ok() {
            flags &= !FLAG_AD;
        }
        out[2..4].copy_from_slice(&flags.to_be_bytes());
        if elapsed > 0 {
            for &at in self.ttl_at.iter() {
                let at = usize::from(at);
                let ttl = u32::from_be_bytes([out[at], out[at + 1], out[at + 2], out[at + 3]]);
                out[at..at + 4].copy_from_slice(&ttl.saturating_sub(elapsed).to_be_bytes());
            }
        }
        let opt_at = out.len();
        if let Some(edns) = q.edns {
            self.push_opt(out, payload, edns);
        }
        if out.len() > limit {
            let opt: Vec<u8> = out[opt_at..].to_vec();
            wire::truncate_answer(out, self.question_end, q.edns.map(|_| &opt[..]));
        }
    }

    fn push_opt(&self, out: &mut Vec<u8>, payload: u16, edns: EdnsInfo) {
        write_opt(out, payload, edns.dnssec_ok, self.ext_rcode, |o| {
            o.extend_from_slice(&self.ede)
        });
        let ar = u16::from_be_bytes([out[10], out[11]]).wrapping_add(1);
        out[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}

/// The Extended DNS Error options of an OPT record, whole (code, length, data), to be
/// passed on to clients.
fn ede_options(bytes: &[u8], opt: &wire::RecordPos) -> Vec<u8> {
    let mut ede = Vec::new();
    let mut p = opt.rdata.0;
    while p + 4 <= opt.rdata.1 {
        let code = u16::from_be_bytes([bytes[p], bytes[p + 1]]);
        let len = usize::from(u16::from_be_bytes([bytes[p + 2], bytes[p + 3]]));
        let end = (p + 4 + len).min(opt.rdata.1);
        if code == EDNS_OPTION_EDE {
            ede.extend_from_slice(&bytes[p..end]);
        }
        p = end;
    }
    ede
}

/// The distinct targets of the answer section's CNAME and DNAME records, in order.
fn cname_chain(bytes: &[u8], records: &[(u8, wire::RecordPos)]) -> Box<[Box<str>]> {
    let mut chain: Vec<Box<str>> = Vec::new();
    for (_, rec) in records.iter().filter(|(s, _)| *s == 1) {
        if rec.rtype == TYPE_CNAME || rec.rtype == TYPE_DNAME {
            let mut s = String::new();
            if name_to_text(bytes, rec.rdata.0, &mut s).is_some()
                && !chain.iter().any(|c| **c == *s)
            {
                chain.push(s.into_boxed_str());
            }
        }
    }
    chain.into_boxed_slice()
}

fn read_question_end(bytes: &[u8]) -> Option<usize> {
    // Reuse the record reader's name walk: a question is a record head without TTL/RDATA.
    let mut pos = HEADER_LEN;
    loop {
        let len = *bytes.get(pos)?;
        match len & 0xC0 {
            0 if len == 0 => break,
            0 => pos += 1 + usize::from(len),
            0xC0 => {
                pos += 1;
                break;
            }
            _ => return None,
        }
    }
    let end = pos + 1 + 4;
    (end <= bytes.len()).then_some(end)
}

/// How long an answer may be cached (RFC 2308 for negative answers), clamping the TTLs
/// in `bytes` to the configured bounds so that replay can simply count them down.
fn cache_lifetime(
    bytes: &mut [u8],
    records: &[(u8, wire::RecordPos)],
    an: u16,
    s: &CacheTtls,
) -> u32 {
    let flags = u16::from_be_bytes([bytes[2], bytes[3]]);
    if flags & FLAG_TC != 0 {
        return 0;
    }
    let set_ttl = |bytes: &mut [u8], at: usize, ttl: u32| {
        bytes[at..at + 4].copy_from_slice(&ttl.to_be_bytes())
    };
    let rcode = wire::header_rcode(bytes);
    // `CacheTtls` holds min_ttl <= max_ttl.
    let (min_ttl, max_ttl, negative_max_ttl) = (s.min_ttl(), s.max_ttl(), s.negative_max_ttl());
    match rcode {
        0 if an > 0 => {
            let mut lifetime = u32::MAX;
            for (section, rec) in records {
                let ttl = rec.ttl.clamp(min_ttl, max_ttl);
                set_ttl(bytes, rec.ttl_at, ttl);
                if *section != 3 {
                    lifetime = lifetime.min(ttl);
                }
            }
            if lifetime == u32::MAX {
                0
            } else {
                lifetime
            }
        }
        0 | 3 => {
            let Some((_, soa)) = records
                .iter()
                .find(|(sec, r)| *sec == 2 && r.rtype == TYPE_SOA)
            else {
                // RFC 2308 §5: a negative answer without an SOA is not cached.
                return 0;
            };
            if soa.rdata.1 < soa.rdata.0 + 4 {
                return 0;
            }
            let m = soa.rdata.1 - 4;
            let minimum = u32::from_be_bytes([bytes[m], bytes[m + 1], bytes[m + 2], bytes[m + 3]]);
            let upstream_neg = soa.ttl.min(minimum);
            let neg = upstream_neg.clamp(min_ttl.min(negative_max_ttl), negative_max_ttl);
            // The upstream's bytes stay as sent unless the configured bounds shorten the
            // negative TTL; then no record may outlive the entry.
            if neg < upstream_neg {
                for (_, rec) in records {
                    set_ttl(bytes, rec.ttl_at, rec.ttl.min(neg));
                }
            }
            neg
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use hickory_proto::op::{Edns, Query as HQuery, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::*;
    use crate::wire::parse_query;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn upstream_answer(
        rcode: ResponseCode,
        answers: Vec<Record>,
        soa: bool,
        edns: bool,
    ) -> Vec<u8> {
        let mut m = Message::response(7, hickory_proto::op::OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.recursion_available = true;
        m.add_query(HQuery::query(name("www.example.com."), RecordType::A));
        m.add_answers(answers);
        if soa {
            let soa = SOA::new(name("example.com."), name("h.example.com."), 1, 2, 3, 4, 60);
            m.add_authority(Record::from_rdata(
                name("example.com."),
                300,
                RData::SOA(soa),
            ));
        }
        if edns {
            m.set_edns(Edns::new());
        }
        m.to_vec().unwrap()
    }

    fn client_query(edns: bool) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 99;
        m.metadata.recursion_desired = true;
        m.add_query(HQuery::query(name("WWW.example.COM."), RecordType::A));
        if edns {
            m.set_edns(Edns::new());
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn replays_with_client_id_case_and_countdown() {
        let answers = vec![
            Record::from_rdata(
                name("www.example.com."),
                300,
                RData::CNAME(CNAME(name("Edge.CDN.example."))),
            ),
            Record::from_rdata(
                name("edge.cdn.example."),
                120,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
            ),
        ];
        let bytes = upstream_answer(ResponseCode::NoError, answers, false, true);
        let reply = Reply::from_upstream(bytes, "udp://x".into(), &CacheTtls::default()).unwrap();
        assert_eq!(reply.lifetime, 120);
        assert_eq!(&*reply.chain, &["edge.cdn.example".into()]);
        let qb = client_query(true);
        let q = parse_query(&qb).unwrap();
        let mut out = Vec::new();
        reply.write(&q, 20, 1232, 1232, &mut out);
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.id, 99);
        assert_eq!(m.queries[0].name().to_string(), "WWW.example.COM.");
        assert_eq!(m.answers[0].ttl, 280);
        assert_eq!(m.answers[1].ttl, 100);
        assert_eq!(m.edns.unwrap().max_payload(), 1232);

        let qb = client_query(false);
        let q = parse_query(&qb).unwrap();
        reply.write(&q, 0, 1232, 512, &mut out);
        let m = Message::from_vec(&out).unwrap();
        assert!(m.edns.is_none());
        assert_eq!(m.answers.len(), 2);
    }

    #[test]
    fn negative_answers_live_for_the_soa_minimum() {
        let bytes = upstream_answer(ResponseCode::NXDomain, vec![], true, false);
        let reply = Reply::from_upstream(bytes, "udp://x".into(), &CacheTtls::default()).unwrap();
        assert_eq!(reply.lifetime, 60);
        assert_eq!(reply.rcode(), 3);
        let bytes = upstream_answer(ResponseCode::NXDomain, vec![], false, false);
        let reply = Reply::from_upstream(bytes, "udp://x".into(), &CacheTtls::default()).unwrap();
        assert_eq!(reply.lifetime, 0);
        let bytes = upstream_answer(ResponseCode::ServFail, vec![], false, false);
        let reply = Reply::from_upstream(bytes, "udp://x".into(), &CacheTtls::default()).unwrap();
        assert_eq!(reply.lifetime, 0);
    }

    #[test]
    fn ttls_are_clamped_to_the_configured_bounds() {
        let answers = vec![Record::from_rdata(
            name("www.example.com."),
            5,
            RData::A(A(Ipv4Addr::LOCALHOST)),
        )];
        let bytes = upstream_answer(ResponseCode::NoError, answers, false, false);
        let d = CacheTtls::default();
        let s = CacheTtls::new(30, d.max_ttl(), d.negative_max_ttl()).unwrap();
        let reply = Reply::from_upstream(bytes, "udp://x".into(), &s).unwrap();
        assert_eq!(reply.lifetime, 30);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let bytes = upstream_answer(ResponseCode::NoError, vec![], true, true);
        for len in 0..bytes.len() {
            let _ = Reply::from_upstream(bytes[..len].to_vec(), "u".into(), &CacheTtls::default());
        }
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            if let Ok(r) = Reply::from_upstream(b, "u".into(), &CacheTtls::default()) {
                let qb = client_query(true);
                let q = parse_query(&qb).unwrap();
                let mut out = Vec::new();
                r.write(&q, 1, 1232, 512, &mut out);
            }
        }
    }
}
