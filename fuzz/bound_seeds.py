#!/usr/bin/env python3
"""Writes the channel-binding seeds of the `handshake` target (fuzz/seeds/handshake/tls_*):
SCRAM-SHA-256-PLUS and its refusals over TLS, built from the recorded PostgreSQL 15 SCRAM login
(fuzz/seeds/handshake/recorded_scram: its server-first, salt and the session messages after
AuthenticationOk), with the ServerSignature recomputed here (RFC 5802 §3) over the AuthMessage
whose `c=` carries the gs2 header and, bound, the channel binding data.

Input layout (src/fuzzing/handshake.rs): [options] [n] [n bytes of binding data] server bytes,
where options = policy | channel << 5. The binding data is tls-server-end-point (RFC 5929 §4.1)
of the certificate seed fuzz/seeds/tls/cert_ecdsa_sha256 (SHA-256 of its DER), or 64 bytes for a
SHA-512 certificate.

Usage: python3 fuzz/bound_seeds.py (SEEDS_DIR=/tmp/x writes elsewhere). Deterministic.
"""
import base64, hashlib, hmac, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.environ.get("SEEDS_DIR") or os.path.join(HERE, "seeds")
NONCE = "9IZ2O01zb9IgiIZ1WJ/zgpJB"
PASSWORD = b"password"

# src/fuzzing/handshake.rs: POLICIES and CHANNELS indices.
ANY, MD5, SCRAM = 0, 2, 3
TLS_PREFER, TLS_REQUIRE, TLS_DISABLE, NODIGEST_PREFER, NODIGEST_REQUIRE = 2, 3, 4, 5, 6


def msg(tag, body):
    return tag + struct.pack("!i", len(body) + 4) + body


def messages(data):
    while data:
        tag, length = data[:1], struct.unpack("!i", data[1:5])[0]
        yield tag, data[5:1 + length]
        data = data[1 + length:]


recorded = open(os.path.join(SEEDS, "handshake", "recorded_scram"), "rb").read()[1:]
parsed = list(messages(recorded))
server_first = parsed[1][1][4:]
assert parsed[1][0] == b"R" and server_first.startswith(b"r=" + NONCE.encode())
# AuthenticationOk and everything after it (ParameterStatus, BackendKeyData, ReadyForQuery).
after_ok = b"".join(msg(t, b) for t, b in parsed[3:])
attrs = dict(a.split(b"=", 1) for a in server_first.split(b","))
salted = hashlib.pbkdf2_hmac("sha256", PASSWORD, base64.b64decode(attrs[b"s"]), int(attrs[b"i"]))

cert = open(os.path.join(SEEDS, "tls", "cert_ecdsa_sha256"), "rb").read()[1:]
SHA256_DATA = hashlib.sha256(cert).digest()
SHA512_DATA = hashlib.sha512(cert).digest()


def sasl(*mechanisms):
    return msg(b"R", struct.pack("!i", 10) + b"".join(m.encode() + b"\0" for m in mechanisms) + b"\0")


def login(gs2, data=b"", mechanisms=("SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"), signed_c=None):
    """SASL, server-first, a SASLFinal signed over `c=` (by default the one the client sends),
    then the rest of the recorded login."""
    c = base64.b64encode(gs2 + data) if signed_c is None else signed_c
    auth_message = b"n=,r=" + NONCE.encode() + b"," + server_first + b",c=" + c + b",r=" + attrs[b"r"]
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    return (sasl(*mechanisms)
            + msg(b"R", struct.pack("!i", 11) + server_first)
            + msg(b"R", struct.pack("!i", 12) + b"v=" + base64.b64encode(signature))
            + after_ok)


def seed(name, policy, channel, data, server):
    prefix = bytes([policy | channel << 5])
    if channel in (TLS_PREFER, TLS_REQUIRE, TLS_DISABLE):
        prefix += bytes([len(data)]) + data
    with open(os.path.join(SEEDS, "handshake", name), "wb") as f:
        f.write(prefix + server)


PLUS = b"p=tls-server-end-point,,"
seed("tls_plus_require_scram", SCRAM, TLS_REQUIRE, SHA256_DATA, login(PLUS, SHA256_DATA))
seed("tls_plus_prefer", ANY, TLS_PREFER, SHA256_DATA, login(PLUS, SHA256_DATA))
seed("tls_plus_sha512_data", ANY, TLS_REQUIRE, SHA512_DATA, login(PLUS, SHA512_DATA))
seed("tls_plus_not_offered_y", ANY, TLS_PREFER, SHA256_DATA,
     login(b"y,,", mechanisms=("SCRAM-SHA-256",)))
seed("tls_disable_n", ANY, TLS_DISABLE, SHA256_DATA, login(b"n,,"))
seed("tls_no_digest_prefer_n", ANY, NODIGEST_PREFER, b"", login(b"n,,"))
# Refusals: the bound exchange signed as if unbound; -PLUS not offered, a password request,
# AuthenticationOk at once, a certificate without a digest, all under require.
seed("tls_plus_signed_unbound", ANY, TLS_REQUIRE, SHA256_DATA,
     login(PLUS, SHA256_DATA, signed_c=b"biws"))
seed("tls_require_not_offered", ANY, TLS_REQUIRE, SHA256_DATA,
     login(b"y,,", mechanisms=("SCRAM-SHA-256",)))
seed("tls_require_md5_request", MD5, TLS_REQUIRE, SHA256_DATA,
     msg(b"R", struct.pack("!i", 5) + b"\x01\x02\x03\x04") + after_ok)
seed("tls_require_ok_at_once", ANY, TLS_REQUIRE, SHA256_DATA, after_ok)
seed("tls_no_digest_require", ANY, NODIGEST_REQUIRE, b"", login(PLUS, SHA256_DATA))
