#!/usr/bin/env python3
"""An independent check of git-pair's recorded exchanges (tests/vectors/exchange.json) against
its protocol specification (doc/PROTOCOL.md).

This is a second implementation of the specification, written from it and from the RFCs, with
Python's standard library alone: Edwards25519 arithmetic (RFC 8032), SPAKE2 in its symmetric mode
as git-pair uses it, HKDF-SHA256 (RFC 5869), HMAC-SHA256 and ChaCha20-Poly1305 (RFC 8439). It
shares no code with git-pair. For every vector it:

- normalizes each side's typed code into its channel and SPAKE2 password;
- recomputes each side's SPAKE2 message from its recorded secret scalar, and finds it on the wire;
- derives the SPAKE2 key and every session key, the check string and the pair secret;
- checks every datagram: its exact encoding (compact JSON with sorted keys), its version, its
  field lengths; opens every payload piece and end message with the sender's keys, checks that
  the pieces make the sender's payload, recomputes every confirmation MAC, checks every `ack`
  (the echo of the addressee's PAKE message, the bitmap of pieces);
- checks that what the receiver could open is exactly what its keys open (so with different
  codes nothing opens), and the events each side reported (payloads, check strings, pair
  secrets, the peer's end);
- checks the anti-amplification rule: an address that has not shown that it receives gets at
  most three times the bytes received from it.

Run: python3 tests/vectors/exchange.py [tests/vectors/exchange.json]
It prints "all vectors agree" and exits 0, or names the first disagreement and exits 1.
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

# --- Edwards25519 (RFC 8032, section 5.1) -------------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def point_add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = t1 * 2 * D * t2 % P
    dd = z1 * 2 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def scalar_mult(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = point_add(q, pt)
        pt = point_add(pt, pt)
        s >>= 1
    return q


def compress(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P != 0:
        return None
    if (x & 1) != sign:
        x = P - x
    return x


def decompress(b):
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % P)


G_Y = 4 * pow(5, P - 2, P) % P
G = (recover_x(G_Y, 0), G_Y, 1, recover_x(G_Y, 0) * G_Y % P)

# --- SPAKE2, symmetric mode, as git-pair uses it ------------------------------------------

# The symmetric-mode blinding element S (python-spake2's ParamsEd25519.S, as the `spake2` crate).
S = decompress(bytes.fromhex("6f00dae87c1be1a73b5922ef431cd8f57879569c222d22b1cd71e8546ab8e6f1"))


def hkdf(ikm, salt, info, n=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def password_scalar(pw):
    return int.from_bytes(hkdf(pw, b"", b"SPAKE2 pw", 48), "big") % L


def spake2_message(x, pw):
    """b"S" || compress(x*G + pw*S)"""
    return b"S" + compress(point_add(scalar_mult(x, G), scalar_mult(password_scalar(pw), S)))


def spake2_key(x, pw, identity, own_msg, peer_msg):
    y = decompress(peer_msg[1:])
    assert y is not None and peer_msg[:1] == b"S"
    pws = password_scalar(pw)
    neg = (P - S[0], S[1], S[2], (P - S[3]) % P)  # -S
    k = scalar_mult(x, point_add(y, scalar_mult(pws, neg)))
    first, second = sorted([own_msg[1:], peer_msg[1:]])
    return hashlib.sha256(
        hashlib.sha256(pw).digest() + hashlib.sha256(identity).digest() + first + second + compress(k)
    ).digest()


# --- ChaCha20-Poly1305 (RFC 8439) ---------------------------------------------------------

def _rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 7)


def chacha20_block(key, counter, nonce):
    state = list(struct.unpack("<4I", b"expand 32-byte k")) + list(struct.unpack("<8I", key)) + [
        counter] + list(struct.unpack("<3I", nonce))
    s = state[:]
    for _ in range(10):
        _quarter(s, 0, 4, 8, 12); _quarter(s, 1, 5, 9, 13); _quarter(s, 2, 6, 10, 14); _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15); _quarter(s, 1, 6, 11, 12); _quarter(s, 2, 7, 8, 13); _quarter(s, 3, 4, 9, 14)
    return struct.pack("<16I", *[(a + b) & 0xFFFFFFFF for a, b in zip(s, state)])


def chacha20(key, counter, nonce, data):
    out = bytearray()
    for i in range(0, len(data), 64):
        block = chacha20_block(key, counter + i // 64, nonce)
        out += bytes(a ^ b for a, b in zip(data[i:i + 64], block))
    return bytes(out)


def poly1305(key, msg):
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:], "little")
    acc, p = 0, (1 << 130) - 5
    for i in range(0, len(msg), 16):
        acc = (acc + int.from_bytes(msg[i:i + 16] + b"\x01", "little")) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def _pad16(b):
    return b"\x00" * (-len(b) % 16)


def _tag(key, nonce, aad, ct):
    otk = chacha20_block(key, 0, nonce)[:32]
    mac_data = aad + _pad16(aad) + ct + _pad16(ct) + struct.pack("<QQ", len(aad), len(ct))
    return poly1305(otk, mac_data)


def aead_seal(key, nonce, aad, plaintext):
    ct = chacha20(key, 1, nonce, plaintext)
    return ct + _tag(key, nonce, aad, ct)


def aead_open(key, nonce, aad, sealed):
    if len(sealed) < 16:
        return None
    ct, tag = sealed[:-16], sealed[-16:]
    if not hmac.compare_digest(_tag(key, nonce, aad, ct), tag):
        return None
    return chacha20(key, 1, nonce, ct)


# --- git-pair version 3 (doc/PROTOCOL.md) -------------------------------------------------

PROTOCOL = b"git-pair/v3"
VERSION = 3
ACK_TAG_LEN = 16
PIECE_PLAIN = 704
MAX_DATAGRAM = 1200


# Unicode's White_Space property (what Rust's char::is_whitespace tests; Python's str.isspace
# differs: it also counts U+001C..U+001F).
WHITE_SPACE = set("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                  "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def parse_code(typed):
    """The channel and the SPAKE2 password of a typed code (PROTOCOL.md, "The code")."""
    lowered = typed.lower()  # Unicode lowercasing; no normalization form
    parts, cur = [], ""
    for ch in lowered:
        if ch in WHITE_SPACE or ch == "-":
            if cur:
                parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    channel = ""
    if parts and all("0" <= c <= "9" for c in parts[0]) and int(parts[0]) < 2**64:
        channel = str(int(parts[0]))
        parts = parts[1:]
    return channel, "-".join(parts).encode()


def labels(role):
    return {k: PROTOCOL + b" " + k.encode() + b" " + role.encode() for k in ("confirm", "payload", "end", "ack")}


def schedule(pake_key, own_sid, peer_sid):
    low, high = sorted([own_sid, peer_sid])
    salt = PROTOCOL + low + high
    role = "low" if own_sid < peer_sid else "high"
    other = "high" if role == "low" else "low"
    k = {}
    for who, r in (("own", role), ("peer", other)):
        for kind, label in labels(r).items():
            k[f"{who}_{kind}"] = hkdf(pake_key, salt, label)
    sas_key = hkdf(pake_key, salt, PROTOCOL + b" short authentication string")
    n = int.from_bytes(sas_key[:3], "big") % 1_000_000
    k["sas"] = f"{n // 1000:03} {n % 1000:03}"
    k["pair_secret"] = hkdf(pake_key, salt, PROTOCOL + b" pair secret")
    return k


MAX_PROOFS = 8


def repair_proof(secret, sender, receiver):
    """A re-pair proof: HMAC-SHA256(pair secret, "git-pair re-pair proof v1" || sender || receiver)."""
    return hmac.new(secret, b"git-pair re-pair proof v1" + sender + receiver, hashlib.sha256).digest()


def aad(what, sender, receiver, extra=b""):
    return PROTOCOL + b" " + what + sender + receiver + extra


def piece_nonce(i):
    return bytes(11) + bytes([i])


def lp(b):
    return len(b).to_bytes(8, "big") + b


def transcript_mac(key, sender, receiver, sender_pake, receiver_pake, sender_payload, receiver_payload):
    m = PROTOCOL + b" transcript"
    for f in (sender, receiver, sender_pake, receiver_pake, sender_payload, receiver_payload):
        m += lp(f)
    return hmac.new(key, m, hashlib.sha256).digest()


def signed_bytes(m):
    """What a directed message's ack tag covers (PROTOCOL.md, "The acknowledgement's tag"): each
    field length-prefixed, the type, sid, to, the type's own fields, then k, p, c, e."""
    own = {
        "pake": lambda: [b64(m["m"])],
        "data": lambda: [bytes([m["i"]]), bytes([m["n"]]), b64(m["d"])],
        "confirm": lambda: [b64(m["mac"])],
        "ack": lambda: [],
        "end": lambda: [b64(m["box"])],
    }[m["t"]]()
    ack = m["ack"]
    fields = [m["t"].encode(), bytes.fromhex(m["sid"]), bytes.fromhex(m["to"])] + own + [
        b64(ack["k"]) if "k" in ack else b"",
        ack["p"].to_bytes(8, "big"),
        bytes([1 if ack["c"] else 0]),
        bytes([1 if ack.get("e", False) else 0]),
    ]
    return b"".join(lp(f) for f in fields)


def ack_tag(key, m):
    return hmac.new(key, PROTOCOL + b" ack" + signed_bytes(m), hashlib.sha256).digest()[:ACK_TAG_LEN]


def b64(s):
    # Standard alphabet, with padding: anything else is refused.
    raw = base64.b64decode(s, validate=True)
    assert base64.b64encode(raw).decode() == s, f"not canonical padded base64: {s}"
    return raw


class Disagreement(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Disagreement(what)


def canonical(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def check_vector(v):
    name = v["name"]
    sides = v["sides"]
    info = {}
    for side in sides:
        channel, password = parse_code(side["typed_code"])
        check(channel == side["channel"], f"{name}/{side['name']}: channel {channel!r}")
        check(password == side["password"].encode(), f"{name}/{side['name']}: password")
        info[side["name"]] = {
            "side": side,
            "sid": bytes.fromhex(side["sid"]),
            "channel": channel,
            "password": password,
            "xs": [int.from_bytes(bytes.fromhex(w), "little") % L for w in side["spake2_x_wide"]],
            "payload": side["payload"].encode(),
            "secrets": [bytes.fromhex(x) for x in side["proof_secrets"]],
        }
    a, b = sides[0]["name"], sides[1]["name"]
    for me, peer in ((a, b), (b, a)):
        s, o = info[me], info[peer]
        sent = [(step, t) for step in s["side"]["steps"] for t in step["sent"]]
        msgs = [(step, t, json.loads(t["datagram"])) for step, t in sent]
        for step, t, m in msgs:
            raw = t["datagram"]
            check(len(raw.encode()) <= MAX_DATAGRAM, f"{name}/{me}: datagram over {MAX_DATAGRAM} bytes")
            check(canonical(m) == raw, f"{name}/{me}: not compact sorted JSON: {raw}")
            check(m["v"] == VERSION, f"{name}/{me}: version")
            check(m["sid"] == s["side"]["sid"], f"{name}/{me}: sid")
            if m["t"] == "hello":
                check(t["to"] == "multicast", f"{name}/{me}: hello by unicast")
                check(m["ch"] == s["channel"], f"{name}/{me}: ch {m['ch']!r}")
                check(set(m) == {"ch", "gen", "sid", "t", "v"}, f"{name}/{me}: hello fields {sorted(m)}")
                check(m["gen"] is s["side"]["generated"], f"{name}/{me}: gen says who generated the code")
            else:
                check(m["to"] == o["side"]["sid"], f"{name}/{me}: addressee")
                check(t["to"] == o["side"]["address"], f"{name}/{me}: directed message to {t['to']}")
        # SPAKE2: one session with the peer, opened by its hello; its message is on the wire.
        pakes = {b64(m["m"]) for _, _, m in msgs if m["t"] == "pake"}
        check(len(pakes) == 1 and len(s["xs"]) == 1, f"{name}/{me}: one SPAKE2 run")
        own_pake = pakes.pop()
        check(len(own_pake) == 33, f"{name}/{me}: PAKE message length")
        check(spake2_message(s["xs"][0], s["password"]) == own_pake,
              f"{name}/{me}: the PAKE message is not x*G + pw*S")
        s["pake"] = own_pake
    for me, peer in ((a, b), (b, a)):
        s, o = info[me], info[peer]
        identity = PROTOCOL + b" channel=" + s["channel"].encode()
        s["pake_key"] = spake2_key(s["xs"][0], s["password"], identity, s["pake"], o["pake"])
        s["keys"] = schedule(s["pake_key"], s["sid"], o["sid"])
    same_code = info[a]["password"] == info[b]["password"] and info[a]["channel"] == info[b]["channel"]
    check((info[a]["pake_key"] == info[b]["pake_key"]) == same_code,
          f"{name}: SPAKE2 keys agree exactly when the codes do")
    check((info[a]["keys"]["sas"] == info[b]["keys"]["sas"]) == same_code, f"{name}: check strings")

    for me, peer in ((a, b), (b, a)):
        s, o = info[me], info[peer]
        k = s["keys"]
        own_sid, peer_sid = s["sid"], o["sid"]
        pieces, ends, macs = {}, [], set()
        tagging = False
        for step in s["side"]["steps"]:
            for t in step["sent"]:
                m = json.loads(t["datagram"])
                if m["t"] == "hello":
                    continue
                ack = m["ack"]
                check(set(ack) <= {"k", "p", "c", "e", "a"} and isinstance(ack["p"], int) and 0 <= ack["p"] < 2**64,
                      f"{name}/{me}: ack {ack}")
                # The tag: under the sender's ack key, on everything it sends once it has the keys
                # (from its first tagged message on); before, only its PAKE message goes, untagged,
                # acknowledging nothing.
                if "a" in ack:
                    check(b64(ack["a"]) == ack_tag(k["own_ack"], m), f"{name}/{me}: ack tag is not the spec's")
                    tagging = True
                else:
                    check(not tagging, f"{name}/{me}: an untagged {m['t']} after tagged ones")
                    check(m["t"] == "pake" and "k" not in ack and ack["p"] == 0 and not ack["c"]
                          and not ack.get("e", False), f"{name}/{me}: an untagged {m['t']} {ack}")
                if "k" in ack:
                    check(b64(ack["k"]) == o["pake"][1:9], f"{name}/{me}: ack.k is not the echo")
                if m["t"] == "pake":
                    check(b64(m["m"]) == s["pake"], f"{name}/{me}: PAKE message changed")
                elif m["t"] == "data":
                    i, n, d = m["i"], m["n"], b64(m["d"])
                    check(0 <= i < n <= 64 and 16 <= len(d) <= 720, f"{name}/{me}: piece {i}/{n}")
                    plain = aead_open(k["own_payload"], piece_nonce(i),
                                      aad(b"piece", own_sid, peer_sid, bytes([i, n])), d)
                    check(plain is not None, f"{name}/{me}: piece {i} does not open under the sender's key")
                    check(pieces.setdefault((i, n), plain) == plain, f"{name}/{me}: piece {i} changed")
                elif m["t"] == "confirm":
                    macs.add(b64(m["mac"]))
                elif m["t"] == "end":
                    box = b64(m["box"])
                    check(16 <= len(box) <= 512, f"{name}/{me}: end length")
                    plain = aead_open(k["own_end"], bytes(12), aad(b"end", own_sid, peer_sid), box)
                    check(plain is not None, f"{name}/{me}: end does not open under the sender's key")
                    ends.append(json.loads(plain))
                else:
                    check(m["t"] == "ack", f"{name}/{me}: unknown type {m['t']}")
        # The pieces are the sealed plaintext cut at 704 bytes: the payload's JSON, a zero byte,
        # and eight 32-byte re-pair proofs, among them one per pair secret this side holds.
        s["plain"], s["proofs"] = None, None
        if pieces:
            n = {n for (_, n) in pieces}
            check(len(n) == 1, f"{name}/{me}: piece counts differ")
            n = n.pop()
            check(sorted(i for i, _ in pieces) == list(range(n)), f"{name}/{me}: missing pieces")
            whole = b"".join(pieces[(i, n)] for i in range(n))
            check(n == max(1, -(-len(whole) // PIECE_PLAIN)), f"{name}/{me}: piece count")
            check(all(len(pieces[(i, n)]) == PIECE_PLAIN for i in range(n - 1)), f"{name}/{me}: piece sizes")
            check(whole[:len(s["payload"]) + 1] == s["payload"] + b"\x00",
                  f"{name}/{me}: the sealed plaintext does not start with the payload and a zero byte")
            rest = whole[len(s["payload"]) + 1:]
            check(len(rest) == MAX_PROOFS * 32, f"{name}/{me}: {len(rest)} bytes of proofs")
            proofs = [rest[j:j + 32] for j in range(0, len(rest), 32)]
            for secret in s["secrets"][:MAX_PROOFS]:
                check(repair_proof(secret, own_sid, peer_sid) in proofs,
                      f"{name}/{me}: no proof of a pair secret it holds")
            s["plain"], s["proofs"] = whole, proofs
        s["macs"] = macs
        # Its end says what its driver concluded or refused.
        told = [st["input"] for st in s["side"]["steps"] if isinstance(st["input"], dict)
                and ("conclude" in st["input"] or "refuse" in st["input"])]
        check(len(set(map(canonical, ends))) <= 1, f"{name}/{me}: different ends")
        if told:
            want = told[0].get("conclude") or {"end": "refused", "detail": told[0]["refuse"]["detail"]}
            check(ends and ends[0] == want, f"{name}/{me}: end {ends} is not {want}")
        s["ends"] = ends


    # The MAC: over both ids, both PAKE messages and both sealed plaintexts (payload, zero byte,
    # proofs), sender first.
    for me, peer in ((a, b), (b, a)):
        s, o = info[me], info[peer]
        if s["macs"]:
            check(len(s["macs"]) == 1, f"{name}/{me}: MAC changed")
            want = transcript_mac(s["keys"]["own_confirm"], s["sid"], o["sid"], s["pake"], o["pake"],
                                  s["plain"], o["plain"])
            check(next(iter(s["macs"])) == want, f"{name}/{me}: the confirmation MAC is not the spec's")

    # The receivers: what each could open and what it reported.
    for me, peer in ((a, b), (b, a)):
        s, o = info[me], info[peer]
        k = s["keys"]
        opened_any = False
        for step in s["side"]["steps"]:
            d = step["input"].get("datagram") if isinstance(step["input"], dict) else None
            if d is None:
                continue
            m = json.loads(d["bytes"])
            if "a" in m.get("ack", {}):
                ok = hmac.compare_digest(b64(m["ack"]["a"]), ack_tag(k["peer_ack"], m))
                check(ok == same_code, f"{name}/{me}: the peer's ack tag verifies iff the codes agree")
            if m["t"] == "data":
                plain = aead_open(k["peer_payload"], piece_nonce(m["i"]),
                                  aad(b"piece", o["sid"], s["sid"], bytes([m["i"], m["n"]])), b64(m["d"]))
                check((plain is not None) == same_code, f"{name}/{me}: a peer piece opens iff the codes agree")
                opened_any |= plain is not None
            if m["t"] == "end":
                plain = aead_open(k["peer_end"], bytes(12), aad(b"end", o["sid"], s["sid"]), b64(m["box"]))
                check(plain is not None, f"{name}/{me}: the peer's end does not open")
            if m["t"] == "confirm":
                want = transcript_mac(k["peer_confirm"], o["sid"], s["sid"], o["pake"], s["pake"],
                                      o["plain"], s["plain"])
                check(b64(m["mac"]) == want, f"{name}/{me}: the peer's MAC does not verify")
        events = [e for st in s["side"]["steps"] for e in st["events"]]
        kinds = [e["event"] for e in events]
        for e in events:
            if e["event"] in ("peer_payload", "verified"):
                check(e["payload"].encode() == o["payload"], f"{name}/{me}: reported payload")
                check(e["peer"] == o["side"]["sid"], f"{name}/{me}: reported peer")
            if e["event"] == "peer_payload":
                got = [bytes.fromhex(x) for x in e["proofs"]]
                check(got == o["proofs"], f"{name}/{me}: reported proofs")
                # Which of this side's pair secrets the peer proved: exactly the shared ones.
                proven = {x for x in s["secrets"] if repair_proof(x, o["sid"], s["sid"]) in got}
                check(proven == set(s["secrets"]) & set(o["secrets"]), f"{name}/{me}: proven secrets")
            if e["event"] == "verified":
                check(same_code, f"{name}/{me}: verified with different codes")
                check(e["sas"] == k["sas"], f"{name}/{me}: check string {e['sas']} is not {k['sas']}")
                check(bytes.fromhex(e["pair_secret"]) == k["pair_secret"], f"{name}/{me}: pair secret")
            if e["event"] == "peer_ended":
                check(o["ends"] and e["end"] == o["ends"][0], f"{name}/{me}: peer_ended {e['end']}")
        if not same_code:
            check("verified" not in kinds and "peer_payload" not in kinds, f"{name}/{me}: opened a wrong code")
            check("verify_failed" in kinds and "codes_differ" in kinds, f"{name}/{me}: no codes_differ")
        check_amplification(name, me, s, o)


def check_amplification(name, me, s, o):
    """Until the peer's address has shown that it receives (echoed our PAKE message in ack.k,
    or sent something that opens under the session keys), it gets at most 3x what it sent."""
    received = sent = 0
    validated = False
    k = s["keys"]
    for step in s["side"]["steps"]:
        d = step["input"].get("datagram") if isinstance(step["input"], dict) else None
        if d is not None:
            received += len(d["bytes"].encode())
            m = json.loads(d["bytes"])
            ack = m.get("ack", {})
            if "k" in ack and b64(ack["k"]) == s["pake"][1:9]:
                validated = True
            if m["t"] == "data" and aead_open(k["peer_payload"], piece_nonce(m["i"]),
                                              aad(b"piece", o["sid"], s["sid"], bytes([m["i"], m["n"]])),
                                              b64(m["d"])) is not None:
                validated = True
        for t in step["sent"]:
            if t["to"] == "multicast":
                continue
            sent += len(t["datagram"].encode())
            check(validated or sent <= 3 * received,
                  f"{name}/{me}: {sent} bytes to an unvalidated address that sent {received}")
            m = json.loads(t["datagram"])
            check(m["t"] != "data" or validated, f"{name}/{me}: a payload piece to an unvalidated address")


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "exchange.json")
    with open(path, encoding="utf-8") as f:
        vectors = json.load(f)
    check(vectors["protocol"] == PROTOCOL.decode(), "protocol")
    # The SPAKE2 parameters, checked against the RFC 8032 base point and S's encoding.
    check(compress(G).hex() == "5866666666666666666666666666666666666666666666666666666666666666", "base point")
    check(compress(S).hex() == "6f00dae87c1be1a73b5922ef431cd8f57879569c222d22b1cd71e8546ab8e6f1", "S")
    # ChaCha20-Poly1305: RFC 8439, section 2.8.2.
    key = bytes(range(0x80, 0xA0))
    sealed = aead_seal(key, bytes.fromhex("070000004041424344454647"), bytes.fromhex("50515253c0c1c2c3c4c5c6c7"),
                       b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
                       b"future, sunscreen would be it.")
    check(sealed[-16:].hex() == "1ae10b594f09e26a7e902ecbd0600691", "RFC 8439 AEAD tag")
    for v in vectors["vectors"]:
        try:
            check_vector(v)
        except Disagreement as e:
            print(f"DISAGREE: {e}")
            return 1
        print(f"{v['name']}: agrees")
    print("all vectors agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
