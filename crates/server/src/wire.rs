//! The DNS wire format, read and written directly on byte buffers.
//!
//! Queries are parsed here rather than through `hickory_proto::op::Message` because the
//! hot path (sinkhole answers, cache hits, refusals) needs only the header, the one
//! question and the OPT record, and a full `Message` costs several allocations per query.
//! Answers are written straight into the output buffer, with the question copied from
//! the client's packet, so the client's letter case comes back untouched.
//!
//! Layout reminders (RFC 1035 §4.1): a 12-byte header (id, flags, QDCOUNT, ANCOUNT,
//! NSCOUNT, ARCOUNT), then the question (name, type, class), then resource records
//! (name, type, class, TTL, RDLENGTH, RDATA). EDNS (RFC 6891) rides in an OPT record in
//! the additional section: its class is the requestor's UDP payload size and its TTL holds
//! the extended RCODE, the version and the DO bit.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Length of the DNS header.
pub(crate) const HEADER_LEN: usize = 12;
/// Longest name on the wire (RFC 1035 §2.3.4).
pub(crate) const MAX_NAME_LEN: usize = 255;

pub(crate) const FLAG_QR: u16 = 0x8000;
pub(crate) const FLAG_AA: u16 = 0x0400;
pub(crate) const FLAG_TC: u16 = 0x0200;
pub(crate) const FLAG_RD: u16 = 0x0100;
pub(crate) const FLAG_RA: u16 = 0x0080;
pub(crate) const FLAG_AD: u16 = 0x0020;
pub(crate) const FLAG_CD: u16 = 0x0010;
const OPCODE_MASK: u16 = 0x7800;

pub(crate) const TYPE_A: u16 = 1;
pub(crate) const TYPE_SOA: u16 = 6;
pub(crate) const TYPE_CNAME: u16 = 5;
pub(crate) const TYPE_AAAA: u16 = 28;
pub(crate) const TYPE_DNAME: u16 = 39;
pub(crate) const TYPE_OPT: u16 = 41;
pub(crate) const CLASS_IN: u16 = 1;

/// EDNS option code of an Extended DNS Error (RFC 8914).
pub(crate) const EDNS_OPTION_EDE: u16 = 15;
/// EDE info code "Blocked".
pub(crate) const EDE_BLOCKED: u16 = 15;
/// EDE info code "No Reachable Authority".
pub(crate) const EDE_NO_REACHABLE_AUTHORITY: u16 = 22;

/// Response codes winsink produces or reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
    /// RFC 6891: an EDNS version winsink does not speak (extended RCODE 16).
    BadVers,
}

impl Rcode {
    /// The low four bits that go in the header.
    fn header_bits(self) -> u16 {
        match self {
            Self::NoError | Self::BadVers => 0,
            Self::FormErr => 1,
            Self::ServFail => 2,
            Self::NxDomain => 3,
            Self::NotImp => 4,
            Self::Refused => 5,
        }
    }

    /// The full 12-bit code.
    pub(crate) fn code(self) -> u16 {
        self.header_bits() | (u16::from(self.extended_bits()) << 4)
    }

    /// The upper eight bits that go in the OPT record's TTL.
    fn extended_bits(self) -> u8 {
        match self {
            Self::BadVers => 1,
            _ => 0,
        }
    }
}

/// The name of a full 12-bit response code, as the query log and `dig` spell it.
pub(crate) fn rcode_name(code: u16) -> &'static str {
    match code {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        23 => "BADCOOKIE",
        _ => "RCODE?",
    }
}

/// What the query's OPT record said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EdnsInfo {
    /// The requestor's UDP payload size (at least 512).
    pub(crate) payload: u16,
    /// The DO bit.
    pub(crate) dnssec_ok: bool,
    /// The EDNS version.
    pub(crate) version: u8,
}

/// A parsed query, borrowing the client's packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Query<'a> {
    /// The client's packet.
    pub(crate) packet: &'a [u8],
    /// The header's flags word.
    pub(crate) flags: u16,
    /// End of the question section in `packet` (it starts at [`HEADER_LEN`]).
    pub(crate) question_end: usize,
    /// The question name as it is on the wire (no compression).
    pub(crate) name: &'a [u8],
    pub(crate) qtype: u16,
    pub(crate) qclass: u16,
    pub(crate) edns: Option<EdnsInfo>,
}

impl Query<'_> {
    /// The question section as the client wrote it.
    pub(crate) fn question(&self) -> &[u8] {
        &self.packet[HEADER_LEN..self.question_end]
    }

    #[cfg(test)]
    pub(crate) fn id(&self) -> u16 {
        u16::from_be_bytes([self.packet[0], self.packet[1]])
    }

    pub(crate) fn checking_disabled(&self) -> bool {
        self.flags & FLAG_CD != 0
    }

    pub(crate) fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|e| e.dnssec_ok)
    }

    /// The largest UDP answer the client accepts: 512 without EDNS, else its payload size
    /// capped by ours.
    pub(crate) fn udp_limit(&self, ours: u16) -> usize {
        match self.edns {
            None => 512,
            Some(e) => usize::from(e.payload.min(ours).max(512)),
        }
    }
}

/// Why a packet is not a query winsink answers normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RejectKind {
    /// Shorter than a header: nothing to answer to, dropped.
    NoHeader,
    /// A response (QR set): answering it could start a loop, dropped.
    Response,
    /// Malformed, or not exactly one question: FORMERR.
    FormErr,
    /// An opcode other than QUERY, or a zone transfer: NOTIMP.
    NotImp,
    /// An EDNS version other than 0: BADVERS.
    BadVers,
}

/// A packet that gets an error answer (or none).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reject<'a> {
    pub(crate) kind: RejectKind,
    pub(crate) packet: &'a [u8],
    /// End of the question if it could be read, so the answer can echo it.
    pub(crate) question_end: Option<usize>,
    pub(crate) qtype: Option<u16>,
    pub(crate) edns: Option<EdnsInfo>,
}

/// Reads the name at `pos` without following compression pointers; returns the offset
/// just past it. `None` if it runs past the end, is too long, or uses a reserved label type.
fn skip_name(packet: &[u8], pos: usize) -> Option<usize> {
    skip_name_inner(packet, pos, true)
}

fn skip_name_inner(packet: &[u8], mut pos: usize, pointers: bool) -> Option<usize> {
    let start = pos;
    loop {
        let len = *packet.get(pos)?;
        match len & 0xC0 {
            0x00 => {
                // RFC 1035's 255-octet limit counts every length octet, the root's too.
                pos += 1 + usize::from(len);
                if pos - start > MAX_NAME_LEN {
                    return None;
                }
                if len == 0 {
                    return Some(pos);
                }
            }
            0xC0 if pointers => {
                packet.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

fn read_u16(packet: &[u8], pos: usize) -> Option<u16> {
    Some(u16::from_be_bytes([
        *packet.get(pos)?,
        *packet.get(pos + 1)?,
    ]))
}

fn read_u32(packet: &[u8], pos: usize) -> Option<u32> {
    let b = packet.get(pos..pos + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// One resource record's position in a packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordPos {
    pub(crate) start: usize,
    pub(crate) rtype: u16,
    pub(crate) class: u16,
    /// Offset of the TTL field.
    pub(crate) ttl_at: usize,
    pub(crate) ttl: u32,
    /// RDATA range.
    pub(crate) rdata: (usize, usize),
}

/// Reads the record at `pos`.
pub(crate) fn read_record(packet: &[u8], pos: usize) -> Option<RecordPos> {
    let p = skip_name(packet, pos)?;
    let rtype = read_u16(packet, p)?;
    let class = read_u16(packet, p + 2)?;
    let ttl = read_u32(packet, p + 4)?;
    let rdlen = usize::from(read_u16(packet, p + 8)?);
    let rstart = p + 10;
    let rend = rstart + rdlen;
    if rend > packet.len() {
        return None;
    }
    Some(RecordPos {
        start: pos,
        rtype,
        class,
        ttl_at: p + 4,
        ttl,
        rdata: (rstart, rend),
    })
}

/// Whether an OPT record's RDATA is whole options (code, length, that many bytes), each
/// within it, to its last byte.
fn options_fit(mut rdata: &[u8]) -> bool {
    while !rdata.is_empty() {
        let Some(&[_, _, hi, lo]) = rdata.get(..4) else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(rest) = rdata.get(4 + len..) else {
            return false;
        };
        rdata = rest;
    }
    true
}

fn edns_of(rec: &RecordPos) -> EdnsInfo {
    EdnsInfo {
        payload: rec.class.max(512),
        dnssec_ok: rec.ttl & 0x8000 != 0,
        version: (rec.ttl >> 16) as u8,
    }
}

/// Skips `skip` records from `pos` (a query's answer and authority records, which it
/// should not have), then reads `ar` more and returns the OPT record among them. `None`
/// (FORMERR) for a record that does not parse, or an OPT record twice, not owned by the
/// root (RFC 6891 §6.1.1), or with options that overrun its RDATA.
fn find_opt(packet: &[u8], mut pos: usize, skip: u32, ar: u16) -> Option<Option<EdnsInfo>> {
    for _ in 0..skip {
        pos = read_record(packet, pos)?.rdata.1;
    }
    let mut edns = None;
    for _ in 0..ar {
        let rec = read_record(packet, pos)?;
        if rec.rtype == TYPE_OPT {
            // RFC 6891 §6.1.1: more than one OPT, or one not owned by the root, is
            // FORMERR; so is one whose options overrun its RDATA.
            if edns.is_some()
                || packet[rec.start] != 0
                || !options_fit(&packet[rec.rdata.0..rec.rdata.1])
            {
                return None;
            }
            edns = Some(edns_of(&rec));
        }
        pos = rec.rdata.1;
    }
    Some(edns)
}

/// Parses a query packet.
pub(crate) fn parse_query(packet: &[u8]) -> Result<Query<'_>, Reject<'_>> {
    let reject = |kind, question_end, qtype, edns| Reject {
        kind,
        packet,
        question_end,
        qtype,
        edns,
    };
    if packet.len() < HEADER_LEN {
        return Err(reject(RejectKind::NoHeader, None, None, None));
    }
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & FLAG_QR != 0 {
        return Err(reject(RejectKind::Response, None, None, None));
    }
    let count = |i: usize| u16::from_be_bytes([packet[4 + 2 * i], packet[5 + 2 * i]]);
    let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));

    // The question, read only when there is exactly one: the answer echoes it.
    let mut question = None;
    if qd == 1 {
        // A pointer in the first name of a packet could only point back into the header.
        if let Some(end) = skip_name_inner(packet, HEADER_LEN, false) {
            if let (Some(t), Some(c)) = (read_u16(packet, end), read_u16(packet, end + 2)) {
                question = Some((end, t, c));
            }
        }
    }
    let opcode = (flags & OPCODE_MASK) >> 11;
    if opcode != 0 {
        return Err(reject(
            RejectKind::NotImp,
            question.map(|q| q.0 + 4),
            question.map(|q| q.1),
            None,
        ));
    }
    let Some((name_end, qtype, qclass)) = question else {
        return Err(reject(RejectKind::FormErr, None, None, None));
    };
    let question_end = name_end + 4;
    let rejected = |kind, edns| Err(reject(kind, Some(question_end), Some(qtype), edns));
    let Some(edns) = find_opt(packet, question_end, u32::from(an) + u32::from(ns), ar) else {
        return rejected(RejectKind::FormErr, None);
    };
    if edns.is_some_and(|e| e.version != 0) {
        return rejected(RejectKind::BadVers, edns);
    }
    if matches!(qtype, 251..=254) {
        return rejected(RejectKind::NotImp, edns);
    }
    Ok(Query {
        packet,
        flags,
        question_end,
        name: &packet[HEADER_LEN..name_end],
        qtype,
        qclass,
        edns,
    })
}

/// Appends the presentation form of a wire name to `out`, lowercased, without the
/// trailing dot (`www.example.com`; the root is `.`). Bytes that are not printable, and
/// `.` or `\` inside a label, are escaped as `\DDD` so that the text maps back to one name.
/// Follows compression pointers (backwards only, so it terminates).
/// Returns `None` if the name is malformed.
pub(crate) fn name_to_text(packet: &[u8], mut pos: usize, out: &mut String) -> Option<()> {
    let start_len = out.len();
    let mut limit = pos;
    let mut total = 0usize;
    loop {
        let len = *packet.get(pos)?;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    break;
                }
                let label = packet.get(pos + 1..pos + 1 + usize::from(len))?;
                total += 1 + label.len();
                // The root label's octet still follows: a full name is total + 1 octets.
                if total >= MAX_NAME_LEN {
                    return None;
                }
                if out.len() > start_len {
                    out.push('.');
                }
                let plain = |b: &u8| matches!(b, 0x21..=0x7E) && *b != b'.' && *b != b'\\';
                match std::str::from_utf8(label) {
                    // The usual label: copy it whole, then lowercase in place.
                    Ok(text) if label.iter().all(plain) => {
                        let at = out.len();
                        out.push_str(text);
                        out[at..].make_ascii_lowercase();
                    }
                    _ => {
                        for b in label {
                            if plain(b) {
                                out.push(char::from(b.to_ascii_lowercase()));
                            } else {
                                let _ = write!(out, "\\{b:03}");
                            }
                        }
                    }
                }
                pos += 1 + label.len();
            }
            0xC0 => {
                let target = usize::from(read_u16(packet, pos)? & 0x3FFF);
                if target >= limit {
                    return None;
                }
                limit = target;
                pos = target;
            }
            _ => return None,
        }
    }
    if out.len() == start_len {
        out.push('.');
    }
    Some(())
}

/// Appends the cache key of a question: the name lowercased as on the wire, type, class
/// and one byte for the DO and CD bits, which change what an upstream returns.
pub(crate) fn cache_key(q: &Query<'_>, out: &mut Vec<u8>) {
    out.clear();
    // Length bytes are at most 63, below b'A', so lowercasing the whole wire name only
    // touches label text.
    out.extend(q.name.iter().map(u8::to_ascii_lowercase));
    out.extend_from_slice(&q.qtype.to_be_bytes());
    out.extend_from_slice(&q.qclass.to_be_bytes());
    out.push(u8::from(q.dnssec_ok()) | (u8::from(q.checking_disabled()) << 1));
}

/// Builds answers in an output buffer.
pub(crate) struct Answer<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> Answer<'o> {
    /// Starts an answer to `q`: header with the client's id, opcode, RD and CD bits, then
    /// the client's question verbatim.
    pub(crate) fn new(out: &'o mut Vec<u8>, q: &Query<'_>, rcode: Rcode, extra_flags: u16) -> Self {
        out.clear();
        let flags = FLAG_QR
            | FLAG_RA
            | (q.flags & (FLAG_RD | FLAG_CD | OPCODE_MASK))
            | extra_flags
            | rcode.header_bits();
        out.extend_from_slice(&q.packet[0..2]);
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(q.question());
        Self { out }
    }

    /// Starts an error answer to a rejected packet, echoing the question when it was read.
    pub(crate) fn for_reject(out: &'o mut Vec<u8>, r: &Reject<'_>, rcode: Rcode) -> Self {
        out.clear();
        let p = r.packet;
        let qflags = u16::from_be_bytes([p[2], p[3]]);
        let flags =
            FLAG_QR | FLAG_RA | (qflags & (FLAG_RD | FLAG_CD | OPCODE_MASK)) | rcode.header_bits();
        out.extend_from_slice(&p[0..2]);
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&[0; 8]);
        if let Some(end) = r.question_end {
            out[5] = 1;
            out.extend_from_slice(&p[HEADER_LEN..end]);
        }
        Self { out }
    }

    /// The answer's length so far.
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    fn bump(&mut self, section: usize) {
        let at = 4 + 2 * section;
        let n = u16::from_be_bytes([self.out[at], self.out[at + 1]]).wrapping_add(1);
        self.out[at..at + 2].copy_from_slice(&n.to_be_bytes());
    }

    fn record_head(&mut self, rtype: u16, ttl: u32, rdlen: u16) {
        // Owner: a pointer to the question name at offset 12.
        self.out.extend_from_slice(&[0xC0, 0x0C]);
        self.out.extend_from_slice(&rtype.to_be_bytes());
        self.out.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.out.extend_from_slice(&ttl.to_be_bytes());
        self.out.extend_from_slice(&rdlen.to_be_bytes());
    }

    /// Adds `QNAME A addr` to the answer section.
    pub(crate) fn a(&mut self, ttl: u32, addr: Ipv4Addr) {
        self.record_head(TYPE_A, ttl, 4);
        self.out.extend_from_slice(&addr.octets());
        self.bump(1);
    }

    /// Adds `QNAME AAAA addr` to the answer section.
    pub(crate) fn aaaa(&mut self, ttl: u32, addr: Ipv6Addr) {
        self.record_head(TYPE_AAAA, ttl, 16);
        self.out.extend_from_slice(&addr.octets());
        self.bump(1);
    }

    /// Adds an SOA for the sinkhole to the authority section, owned by the question name
    /// so that the client caches the negative answer for `ttl` (RFC 2308 §5: the SOA's TTL
    /// and MINIMUM both bound it).
    pub(crate) fn sinkhole_soa(&mut self, ttl: u32) {
        const MNAME: &[u8] = b"\x07winsink\x07invalid\x00";
        // `hostmaster` followed by a pointer to MNAME, which starts at a known offset.
        let start = self.out.len();
        let rdlen = MNAME.len() + 11 + 2 + 20;
        self.record_head(TYPE_SOA, ttl, rdlen as u16);
        let mname_at = self.out.len();
        self.out.extend_from_slice(MNAME);
        if mname_at > 0x3FFF {
            // Unreachable for a question of at most 255 bytes; keep the record well formed.
            self.out.truncate(start);
            return;
        }
        self.out.extend_from_slice(b"\x0ahostmaster");
        self.out
            .extend_from_slice(&(0xC000 | mname_at as u16).to_be_bytes());
        for v in [1u32, 3600, 600, 86400, ttl] {
            self.out.extend_from_slice(&v.to_be_bytes());
        }
        self.bump(2);
    }

    /// Adds an OPT record advertising `payload`, echoing the DO bit, with the extended
    /// bits of `rcode` and the options written by `options`.
    pub(crate) fn opt(
        &mut self,
        payload: u16,
        edns: EdnsInfo,
        rcode: Rcode,
        options: impl FnOnce(&mut Vec<u8>),
    ) {
        write_opt(
            self.out,
            payload,
            edns.dnssec_ok,
            rcode.extended_bits(),
            options,
        );
        self.bump(3);
    }

    /// The bytes written so far.
    #[cfg(test)]
    pub(crate) fn finish(self) -> &'o mut Vec<u8> {
        self.out
    }
}

/// Appends an OPT record (the caller counts it in ARCOUNT).
pub(crate) fn write_opt(
    out: &mut Vec<u8>,
    payload: u16,
    dnssec_ok: bool,
    ext_rcode: u8,
    options: impl FnOnce(&mut Vec<u8>),
) {
    out.push(0);
    out.extend_from_slice(&TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    let ttl = (u32::from(ext_rcode) << 24) | if dnssec_ok { 0x8000 } else { 0 };
    out.extend_from_slice(&ttl.to_be_bytes());
    let len_at = out.len();
    out.extend_from_slice(&[0, 0]);
    options(out);
    let len = (out.len() - len_at - 2) as u16;
    out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
}

/// Appends an Extended DNS Error option (RFC 8914) with `text` cut to at most `max`
/// bytes (and 300) at a character boundary, so the whole option stays well under a UDP
/// payload.
pub(crate) fn write_ede(out: &mut Vec<u8>, info_code: u16, text: &str, max: usize) {
    let mut cut = text.len().min(max).min(300);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let text = &text[..cut];
    out.extend_from_slice(&EDNS_OPTION_EDE.to_be_bytes());
    out.extend_from_slice(&((2 + text.len()) as u16).to_be_bytes());
    out.extend_from_slice(&info_code.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// Cuts an over-long UDP answer down to header, question and OPT, with TC set, so that
/// the client retries over TCP (RFC 1035 §4.2.1, RFC 7766 §5).
pub(crate) fn truncate_answer(out: &mut Vec<u8>, question_end: usize, opt: Option<&[u8]>) {
    out.truncate(question_end);
    out[2] |= (FLAG_TC >> 8) as u8;
    out[6..12].fill(0);
    if let Some(opt) = opt {
        out.extend_from_slice(opt);
        out[11] = 1;
    }
}

/// The header's 4-bit RCODE of an answer.
pub(crate) fn header_rcode(packet: &[u8]) -> u16 {
    packet.get(3).map_or(0, |b| u16::from(b & 0x0F))
}

/// ANCOUNT of an answer.
pub(crate) fn answer_count(packet: &[u8]) -> u16 {
    read_u16(packet, 6).unwrap_or(0)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_question_name_of_256_octets_is_formerr_without_the_question() {
        // Labels of 53, 53, 48, 48 and 48 octets: 255 octets with their length octets,
        // 256 with the root label, one over RFC 1035's limit of 255. Found by fuzzing:
        // the reply echoed a name hickory (and any client) cannot decode.
        let mut p = vec![0, 5, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for len in [53u8, 53, 48, 48, 48] {
            p.push(len);
            p.extend(std::iter::repeat_n(b'a', usize::from(len)));
        }
        p.extend_from_slice(&[0, 0, 1, 0, 1]);
        let r = parse_query(&p).expect_err("a 256-octet name is not a query");
        assert_eq!(r.kind, RejectKind::FormErr);
        assert_eq!(r.question_end, None, "the name must not be echoed");

        // One octet shorter is exactly the limit, and a query.
        let mut p = vec![0, 5, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for len in [53u8, 53, 48, 48, 47] {
            p.push(len);
            p.extend(std::iter::repeat_n(b'a', usize::from(len)));
        }
        p.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert!(parse_query(&p).is_ok(), "a 255-octet name is a query");
    }
    use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode};
    use hickory_proto::rr::{Name, RData, RecordType};

    use super::*;

    fn query_bytes(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.metadata.recursion_desired = true;
        m.add_query(HQuery::query(Name::from_ascii(name).unwrap(), rtype));
        if edns {
            let mut e = Edns::new();
            e.set_max_payload(4096).set_dnssec_ok(true);
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn parses_a_query_with_edns() {
        let bytes = query_bytes("WWW.Example.COM.", RecordType::AAAA, true);
        let q = parse_query(&bytes).unwrap();
        assert_eq!(q.qtype, 28);
        assert_eq!(q.qclass, 1);
        assert_eq!(q.id(), 0x1234);
        assert_eq!(
            q.edns,
            Some(EdnsInfo {
                payload: 4096,
                dnssec_ok: true,
                version: 0
            })
        );
        let mut s = String::new();
        name_to_text(&bytes, HEADER_LEN, &mut s).unwrap();
        assert_eq!(s, "www.example.com");
        assert_eq!(q.udp_limit(1232), 1232);
    }

    #[test]
    fn escapes_odd_label_bytes() {
        let mut packet = vec![0; 12];
        packet.extend_from_slice(b"\x03a.b\x02\x00Z\x00");
        let mut s = String::new();
        name_to_text(&packet, 12, &mut s).unwrap();
        assert_eq!(s, "a\\046b.\\000z");
    }

    #[test]
    fn rejects_what_is_not_one_plain_query() {
        assert_eq!(
            parse_query(&[1, 2, 3]).unwrap_err().kind,
            RejectKind::NoHeader
        );
        let mut bytes = query_bytes("example.com.", RecordType::A, false);
        bytes[2] |= 0x80;
        assert_eq!(parse_query(&bytes).unwrap_err().kind, RejectKind::Response);
        let mut bytes = query_bytes("example.com.", RecordType::A, false);
        bytes[5] = 0;
        assert_eq!(parse_query(&bytes).unwrap_err().kind, RejectKind::FormErr);
        let mut bytes = query_bytes("example.com.", RecordType::A, false);
        bytes[2] |= 4 << 3; // NOTIFY
        let r = parse_query(&bytes).unwrap_err();
        assert_eq!(r.kind, RejectKind::NotImp);
        assert!(r.question_end.is_some());
        let bytes = query_bytes("example.com.", RecordType::A, false);
        assert_eq!(
            parse_query(&bytes[..bytes.len() - 1]).unwrap_err().kind,
            RejectKind::FormErr
        );
        assert_eq!(
            parse_query(&query_bytes("example.com.", RecordType::AXFR, false))
                .unwrap_err()
                .kind,
            RejectKind::NotImp
        );
    }

    #[test]
    fn rejects_a_pointer_in_the_question() {
        let mut packet = query_bytes("example.com.", RecordType::A, false);
        packet.truncate(12);
        packet.extend_from_slice(&[0xC0, 0x00, 0, 1, 0, 1]);
        assert_eq!(parse_query(&packet).unwrap_err().kind, RejectKind::FormErr);
    }

    #[test]
    fn never_panics_on_any_prefix_or_bit_flip() {
        let bytes = query_bytes("a.very.long.name.example.org.", RecordType::HTTPS, true);
        for len in 0..=bytes.len() {
            let _ = parse_query(&bytes[..len]);
        }
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            if let Ok(q) = parse_query(&b) {
                let mut s = String::new();
                let _ = name_to_text(&b, HEADER_LEN, &mut s);
                let mut out = Vec::new();
                Answer::new(&mut out, &q, Rcode::NoError, 0).sinkhole_soa(10);
                Message::from_vec(&out).unwrap();
            }
        }
    }

    #[test]
    fn written_answers_parse_back() {
        let bytes = query_bytes("Blocked.Example.", RecordType::A, true);
        let q = parse_query(&bytes).unwrap();
        let mut out = Vec::new();
        let mut a = Answer::new(&mut out, &q, Rcode::NxDomain, FLAG_AA);
        a.a(10, Ipv4Addr::UNSPECIFIED);
        a.sinkhole_soa(10);
        a.opt(1232, q.edns.unwrap(), Rcode::NxDomain, |o| {
            write_ede(o, EDE_BLOCKED, "Diagnostic Data", usize::MAX)
        });
        let m = Message::from_vec(a.finish()).unwrap();
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_eq!(m.metadata.op_code, OpCode::Query);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.queries[0].name().to_string(), "Blocked.Example.");
        assert_eq!(m.answers[0].data, RData::A(Ipv4Addr::UNSPECIFIED.into()));
        let RData::SOA(soa) = &m.authorities[0].data else {
            panic!("soa")
        };
        assert_eq!(soa.minimum, 10);
        assert_eq!(soa.rname.to_string(), "hostmaster.winsink.invalid.");
        let edns = m.edns.unwrap();
        assert_eq!(edns.max_payload(), 1232);
        assert!(edns.flags().dnssec_ok);
    }

    #[test]
    fn truncation_keeps_question_and_opt() {
        let bytes = query_bytes("example.com.", RecordType::A, false);
        let q = parse_query(&bytes).unwrap();
        let mut out = Vec::new();
        let mut a = Answer::new(&mut out, &q, Rcode::NoError, 0);
        for _ in 0..100 {
            a.a(10, Ipv4Addr::LOCALHOST);
        }
        let out = a.finish();
        let mut opt = Vec::new();
        write_opt(&mut opt, 1232, false, 0, |_| {});
        truncate_answer(out, q.question_end, Some(&opt));
        let m = Message::from_vec(out).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
        assert_eq!(m.queries.len(), 1);
        assert!(m.edns.is_some());
    }

    #[test]
    fn opt_options_must_fit_their_rdata() {
        assert!(options_fit(b""));
        assert!(options_fit(b"\x00\x0a\x00\x02ab"));
        assert!(options_fit(b"\x00\x0a\x00\x00\x00\x0f\x00\x01x"));
        // A length past the end, and half an option header.
        assert!(!options_fit(b"\x00\x0a\x00\x0aab"));
        assert!(!options_fit(b"\x00\x0a\x00"));
        assert!(!options_fit(b"\x00\x0a\x00\x01ab"));
    }
}
