#!/usr/bin/env python3
"""Writes the dns_request seeds: a selector byte, an optional upstream answer, a request.

Run from this folder: `python3 make_dns_seeds.py`. See fuzz_targets/dns_request.rs for
the input layout.
"""
import struct


def name(text):
    out = b""
    for label in text.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qid, qname, qtype, edns=None, flags=0x0100):
    q = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    q += name(qname) + struct.pack(">HH", qtype, 1)
    if edns:
        payload, do = edns
        q += b"\0" + struct.pack(">HHIH", 41, payload, 0x8000 if do else 0, 0)
    return q


def upstream(qid, qname, qtype, records):
    """An answer with compression pointers to the question name (offset 12)."""
    m = struct.pack(">HHHHHH", qid, 0x8180, 1, len(records), 0, 0)
    m += name(qname) + struct.pack(">HH", qtype, 1)
    for rtype, ttl, rdata in records:
        m += b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata
    return m


def with_upstream(sel, age, answer, q):
    return bytes([sel | 0x80, age]) + struct.pack(">H", len(answer)) + answer + q


SEEDS = {
    "a-catalog-blocked": bytes([0x00]) + query(1, "self.events.data.microsoft.com", 1),
    "aaaa-custom-edns": bytes([0x04]) + query(2, "x.blocked.test", 28, edns=(4096, True)),
    "mx-nodata-tcp": bytes([0x12]) + query(3, "x.blocked.test", 15, edns=(1232, False)),
    "lab-group-nxdomain": bytes([0x21]) + query(4, "www.example", 1),
    "refused-client": bytes([0x60]) + query(5, "example.org", 1),
    "formerr-two-questions": bytes([0x00])
    + struct.pack(">HHHHHH", 6, 0x0100, 2, 0, 0, 0)
    + name("a.test") + struct.pack(">HH", 1, 1),
    "notimp-any": bytes([0x00]) + query(7, "example.org", 255),
    # EDNS version 1: the OPT TTL field's second octet.
    "badvers": bytes([0x00])
    + query(8, "example.org", 1, edns=(1232, False))[:-6]
    + struct.pack(">IH", 0x00010000, 0),
    "cached-a": with_upstream(
        0x00, 5,
        upstream(9, "ok.blocked.test", 1, [(1, 300, bytes([192, 0, 2, 7]))]),
        query(9, "OK.Blocked.Test", 1, edns=(1232, False)),
    ),
    "cached-cname-into-blocked": with_upstream(
        0x00, 0,
        upstream(10, "ok.blocked.test", 1, [(5, 60, name("ad.blocked.test")),
                                           (1, 60, bytes([192, 0, 2, 8]))]),
        query(10, "ok.blocked.test", 1),
    ),
}

for file, data in SEEDS.items():
    with open(f"dns_request/{file}", "wb") as f:
        f.write(data)
