#!/usr/bin/env python3
"""Independent reference for git-pair's locate protocol (src/protocol/locate/mod.rs).

Computes the known-answer vectors in src/protocol/locate/tests.rs with Python's
hashlib/hmac, not with git-pair's code:

  keys   = HKDF-SHA256(ikm = pair secret, salt = "git-pair/v1 locate",
                       info = "git-pair/v1 locate query low|query high|answer low|answer high")
  query  = "GPL" 0x01 | 0x01 | nonce (16) | HMAC(query key of the querier's role, all before)
  answer = "GPL" 0x01 | 0x02 | nonce (16) | port (u16 BE) | n (u8)
           | n x (0x04 ipv4 (4) | 0x06 ipv6 (16)) | HMAC(answer key of the answerer's role, all before)

Run: python3 tests/vectors/locate.py
"""
import hashlib
import hmac
import ipaddress


def hkdf(ikm, salt, info, n=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


SECRET = bytes(range(32))
NONCE = bytes([0xA5] * 16)
MAGIC = b"GPL\x01"

keys = {
    label: hkdf(SECRET, b"git-pair/v1 locate", b"git-pair/v1 locate " + label.encode())
    for label in ("query low", "query high", "answer low", "answer high")
}
for label, key in keys.items():
    print(f"{label:12} {key.hex()}")

# The low side queries; the high side answers.
q = MAGIC + bytes([1]) + NONCE
q += hmac.new(keys["query low"], q, hashlib.sha256).digest()
print("query       ", q.hex())

a = MAGIC + bytes([2]) + NONCE + (22).to_bytes(2, "big") + bytes([2])
a += bytes([4]) + ipaddress.IPv4Address("10.0.0.2").packed
a += bytes([6]) + ipaddress.IPv6Address("fe80::2").packed
a += hmac.new(keys["answer high"], a, hashlib.sha256).digest()
print("answer      ", a.hex())

# The re-pair proof (src/protocol/repair.rs): HMAC-SHA256(pair secret,
# "git-pair re-pair proof v1" || sender sid || receiver sid), sender 0x11 * 16, receiver 0x22 * 16.
proof = hmac.new(SECRET, b"git-pair re-pair proof v1" + bytes([0x11] * 16) + bytes([0x22] * 16),
                 hashlib.sha256).digest()
print("re-pair     ", proof.hex())
