#!/usr/bin/env python3
"""Independent reference for git-pair's key schedule (src/protocol/schedule.rs).

Computes the known-answer vectors in src/protocol/schedule/tests.rs with
Python's hashlib/hmac and the `cryptography` package, not with git-pair's
code, so that the Rust tests check the schedule against a second
implementation of its specification:

  salt   = "git-pair/v3" || low_sid || high_sid
  key_L  = HKDF-SHA256(ikm = SPAKE2 key, salt, info = label, L = 32)
  labels = "git-pair/v3 confirm low|high", "git-pair/v3 payload low|high",
           "git-pair/v3 end low|high", "git-pair/v3 ack low|high",
           "git-pair/v3 short authentication string", "git-pair/v3 pair secret"
  sas    = (first 3 bytes of the SAS key as a big-endian integer) mod 10^6, "ddd ddd"
  mac    = HMAC-SHA256(confirm key of the sender's role,
             "git-pair/v3" || " transcript" ||
             for f in (sender_sid, receiver_sid, sender_pake, receiver_pake,
                       sender_payload, receiver_payload): u64be(len f) || f)
           (the payloads are the plaintexts)
  piece  = the plaintext cut into chunks of 704 bytes (one empty chunk for an
           empty payload); chunk i of n is
           ChaCha20-Poly1305(payload key of the sender's role,
             nonce = 0^11 || u8 i,
             aad = "git-pair/v3 piece" || sender_sid || receiver_sid || u8 i || u8 n)
  end    = ChaCha20-Poly1305(end key of the sender's role, nonce = 0^12,
             aad = "git-pair/v3 end" || sender_sid || receiver_sid, plaintext = JSON)
  tag    = HMAC-SHA256(ack key of the sender's role,
             "git-pair/v3" || " ack" || signed bytes of the message)[:16]
           (signed bytes: doc/PROTOCOL.md, "The acknowledgement's tag")

Run: python3 tests/vectors/schedule.py
"""
import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

PIECE_PLAIN = 704


def hkdf(ikm, salt, info, n=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def lp(b):
    return len(b).to_bytes(8, "big") + b


pake = bytes(range(32))
low = bytes([0x11] * 16)
high = bytes([0x22] * 16)
salt = b"git-pair/v3" + low + high
keys = {
    name: hkdf(pake, salt, label)
    for name, label in [
        ("confirm_low", b"git-pair/v3 confirm low"),
        ("confirm_high", b"git-pair/v3 confirm high"),
        ("payload_low", b"git-pair/v3 payload low"),
        ("payload_high", b"git-pair/v3 payload high"),
        ("end_low", b"git-pair/v3 end low"),
        ("end_high", b"git-pair/v3 end high"),
        ("ack_low", b"git-pair/v3 ack low"),
        ("ack_high", b"git-pair/v3 ack high"),
        ("sas", b"git-pair/v3 short authentication string"),
        ("pair_secret", b"git-pair/v3 pair secret"),
    ]
}
for name, k in keys.items():
    print(f"{name} = {k.hex()}")
n = int.from_bytes(keys["sas"][:3], "big") % 1000000
print(f'sas_string = "{n // 1000:03} {n % 1000:03}"')

pake_low = b"S" + bytes([0xA0] * 32)
pake_high = b"S" + bytes([0xB0] * 32)
payload_low = b'{"user":"alice"}'
payload_high = b'{"user":"bob"}'


def mac(key, s, r, sp, rp, spl, rpl):
    m = b"git-pair/v3" + b" transcript" + lp(s) + lp(r) + lp(sp) + lp(rp) + lp(spl) + lp(rpl)
    return hmac.new(key, m, hashlib.sha256).hexdigest()


print("mac_from_low =", mac(keys["confirm_low"], low, high, pake_low, pake_high, payload_low, payload_high))
print("mac_from_high =", mac(keys["confirm_high"], high, low, pake_high, pake_low, payload_high, payload_low))


def pieces(key, sender, receiver, plaintext):
    chunks = [plaintext[i:i + PIECE_PLAIN] for i in range(0, len(plaintext), PIECE_PLAIN)] or [b""]
    n = len(chunks)
    return [
        ChaCha20Poly1305(key).encrypt(
            bytes(11) + bytes([i]), c, b"git-pair/v3 piece" + sender + receiver + bytes([i, n])
        )
        for i, c in enumerate(chunks)
    ]


print("piece_from_low =", pieces(keys["payload_low"], low, high, payload_low)[0].hex())
# A payload of two pieces: 800 bytes, byte k = k mod 251.
long_payload = bytes(k % 251 for k in range(800))
two = pieces(keys["payload_high"], high, low, long_payload)
print("pieces_from_high =", len(two), [len(p) for p in two])
print("pieces_from_high_sha256 =", [hashlib.sha256(p).hexdigest() for p in two])
print("empty_piece_from_low =", pieces(keys["payload_low"], low, high, b"")[0].hex())
end_plain = b'{"end":"refused","detail":"no"}'
end = ChaCha20Poly1305(keys["end_low"]).encrypt(bytes(12), end_plain, b"git-pair/v3 end" + low + high)
print("end_from_low =", end.hex())

# The tag of an `ack` message from low to high that echoes 8 bytes of high's PAKE message and
# acknowledges pieces 0 and 2 and high's MAC, not its end.
signed = b"".join(
    lp(f) for f in [b"ack", low, high, pake_high[1:9], (5).to_bytes(8, "big"), b"\x01", b"\x00"]
)
tag = hmac.new(keys["ack_low"], b"git-pair/v3" + b" ack" + signed, hashlib.sha256).digest()[:16]
print("ack_tag_from_low =", tag.hex())
