#!/usr/bin/env python3
"""Records real-server byte transcripts and writes them as fuzz seeds (fuzz/seeds/<target>/recorded_*).

Usage: python3 fuzz/record_seeds.py PORT
against the throwaway cluster of tests/support/cluster.rs (roles postgres/trust, pass_user,
md5_user, scram_user, password 'password'), e.g. started by any test that calls
Cluster::shared(), with WIREPOOL_TEST_KEEP=1 to keep it while this runs.

The SCRAM login uses the psql vector's client nonce so the handshake target can replay it to the
verified state; the server's salt is new in every cluster, so after re-recording put the printed
SaltedPassword and salt into the third entry of VECTORS in src/fuzzing/scram.rs.
Recorded with PostgreSQL 15.18 on 2026-11-24.
"""
import socket, struct, sys, os, hashlib, hmac, base64, json, tempfile
port = int(sys.argv[1]); out = tempfile.mkdtemp()
SEEDS = os.environ.get("SEEDS_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")
NONCE = "9IZ2O01zb9IgiIZ1WJ/zgpJB"
os.makedirs(out, exist_ok=True)

def msg(tag, body): return tag + struct.pack("!i", len(body) + 4) + body

class Conn:
    def __init__(self, user, db="postgres", extra=()):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.rx = b""; self.buf = b""
        params = [("user", user), ("database", db), ("client_encoding", "UTF8")] + list(extra)
        body = struct.pack("!i", 196608) + b"".join(k.encode()+b"\0"+v.encode()+b"\0" for k, v in params) + b"\0"
        self.s.sendall(struct.pack("!i", len(body) + 4) + body)
    def read(self):
        while True:
            if len(self.buf) >= 5:
                tag = self.buf[:1]; (n,) = struct.unpack("!i", self.buf[1:5])
                if len(self.buf) >= 1 + n:
                    body = self.buf[5:1+n]; self.buf = self.buf[1+n:]
                    return tag, body
            d = self.s.recv(65536)
            if not d: return None, None
            self.rx += d; self.buf += d
    def send(self, b): self.s.sendall(b)
    def until_z(self):
        seen = []
        while True:
            tag, body = self.read()
            if tag is None: return seen
            seen.append((tag, body))
            if tag == b"G": self.send(msg(b"f", b"not supported\0"))
            if tag == b"Z": return seen

errors = []
def login(user, password, db="postgres"):
    c = Conn(user, db)
    scram = {}
    while True:
        tag, body = c.read()
        if tag is None: return c, "eof"
        if tag == b"E":
            errors.append(body); return c, "error"
        if tag == b"N": errors.append(body)
        if tag == b"Z": return c, "ok"
        if tag != b"R": continue
        (code,) = struct.unpack("!i", body[:4])
        if code == 3:
            c.send(msg(b"p", password.encode() + b"\0"))
        elif code == 5:
            salt = body[4:8]
            inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
            c.send(msg(b"p", b"md5" + hashlib.md5(inner + salt).hexdigest().encode() + b"\0"))
        elif code == 10:
            first = ("n,,n=,r=" + NONCE).encode()
            c.send(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
        elif code == 11:
            sf = body[4:].decode(); attrs = dict(a.split("=", 1) for a in sf.split(","))
            salt = base64.b64decode(attrs["s"]); it = int(attrs["i"])
            salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, it)
            ck = hmac.new(salted, b"Client Key", "sha256").digest()
            sk = hmac.new(salted, b"Server Key", "sha256").digest()
            wo = "c=biws,r=" + attrs["r"]
            am = ("n=,r=" + NONCE + "," + sf + "," + wo).encode()
            sig = hmac.new(hashlib.sha256(ck).digest(), am, "sha256").digest()
            proof = bytes(a ^ b for a, b in zip(ck, sig))
            c.send(msg(b"p", (wo + ",p=" + base64.b64encode(proof).decode()).encode()))
            if password == "password":
                print("SCRAM %s: salt %s, iterations %d, SaltedPassword %s" % (user, attrs["s"], it, salted.hex()))

def save(name, data):
    open(os.path.join(out, name), "wb").write(data)

# Handshakes, one per auth method, plus failures.
for name, user, pw, db in [
    ("trust", "postgres", "", "postgres"),
    ("password", "pass_user", "password", "postgres"),
    ("md5", "md5_user", "password", "postgres"),
    ("scram", "scram_user", "password", "postgres"),
    ("md5_wrong_password", "md5_user", "nope", "postgres"),
    ("scram_wrong_password", "scram_user", "nope", "postgres"),
    ("no_such_database", "postgres", "", "no_such_db"),
]:
    c, how = login(user, pw, db)
    save("handshake_" + name, c.rx)
    c.s.close()

# Queries on a trust connection: the bytes after each Query up to ReadyForQuery.
queries = {
    "select_one_null": "select 1, null",
    "series": "select g, repeat('x', g), null::text from generate_series(1, 5) g",
    "division_by_zero": "select 1/0",
    "syntax_error": "selec 1",
    "notice": "do $$ begin raise notice 'hello %', 42; raise warning 'careful'; end $$",
    "empty": "",
    "two_statements": "select 1 as a; select 'two' as b, null as c",
    "begin": "begin",
    "error_in_transaction": "select 1/0",
    "rollback": "rollback",
    "copy_out": "copy (select 1, 'a') to stdout",
    "copy_in": "copy pg_temp_t from stdin",
    "listen_notify": "listen chan; notify chan, 'payload'",
    "set_parameter": "set application_name = 'fuzz'",
    "non_ascii": "select 'caf\u00e9', E'\\\\x00'::bytea",
    "wide_row": "select repeat('y', 3000)",
    "error_after_rows": "select 1/(3 - g) from generate_series(1, 5) g",
}
c, how = login("postgres", "")
assert how == "ok"
c.send(msg(b"Q", b"create temp table pg_temp_t (a int)\0")); c.until_z()
startup = c.rx
for name, sql in queries.items():
    before = len(c.rx)
    c.send(msg(b"Q", sql.encode() + b"\0"))
    seen = c.until_z()
    if name == "copy_in":
        pass
    for tag, body in seen:
        if tag in (b"E", b"N"): errors.append(body)
    save("query_" + name, c.rx[before:])
save("session_all", c.rx)
c.send(b"X\0\0\0\x04"); c.s.close()
for i, body in enumerate(errors):
    save("errbody_%02d" % i, body)


# ---- Seeds: one options byte (see each target's module header in src/fuzzing/) + the bytes. ----
R = out
def put(target, name, data):
    d = os.path.join(SEEDS, target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)
def rd(n): return open(os.path.join(R, n), "rb").read()
def frames(d):
    i, res = 0, []
    while i < len(d):
        t = d[i:i+1]; (n,) = struct.unpack("!i", d[i+1:i+5]); res.append((t, d[i+5:i+1+n])); i += 1 + n
    return res
def enc(fr): return b"".join(t + struct.pack("!i", len(b) + 4) + b for t, b in fr)

# handshake: options = require_auth policy index | 8 (no password) | 16 (SCRAM cap 4095)
hs = {f[len("handshake_"):]: rd(f) for f in os.listdir(R) if f.startswith("handshake_")}
for name, data in hs.items():
    put("handshake", "recorded_" + name, b"\x00" + data)
for name, opt, base in [
    ("scram_require_scram", 3, "scram"), ("scram_require_password", 1, "scram"),
    ("scram_cap_4095", 16, "scram"), ("scram_no_password", 8, "scram"),
    ("md5_require_md5", 2, "md5"), ("md5_require_scram", 3, "md5"),
    ("password_require_password", 1, "password"), ("password_not_password", 5, "password"),
    ("trust_require_auth", 7, "trust"), ("trust_require_none", 4, "trust"), ("trust_require_md5", 2, "trust"),
]:
    put("handshake", "recorded_" + name, bytes([opt]) + hs[base])
f = frames(hs["scram"])
put("handshake", "scram_ok_without_sasl_final", b"\x00" + enc(f[:2] + f[3:]))  # ponylang/postgres#204
put("handshake", "scram_plus_offered",
    b"\x00" + enc([(b"R", struct.pack("!i", 10) + b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")] + f[3:]))
put("handshake", "negotiate_protocol_version", b"\x00" + enc([(b"v", struct.pack("!ii", 196608, 0))] + f[3:]))
# scram: the recorded server-first / server-final
put("scram", "recorded_pg15_exchange", b"0" + f[1][1][4:] + b"\n" + f[2][1][4:] + b"\npassword")
# decode_backend (options 1: 4 KiB cap; 3: the default) and simple_query (options unused)
Z = b"Z\0\0\0\x05I"
for name, data in hs.items():
    put("decode_backend", "recorded_handshake_" + name, b"\x01" + data)
put("decode_backend", "recorded_session", b"\x03" + rd("session_all"))
for n in os.listdir(R):
    if n.startswith("query_"):
        put("decode_backend", "recorded_" + n, b"\x01" + Z + rd(n))
        put("simple_query", "recorded_" + n, b"\x00" + rd(n))
put("decode_backend", "wide_row_over_cap_64", b"\x00" + Z + rd("query_wide_row"))
# error_fields: every ErrorResponse / NoticeResponse body seen
for n in sorted(os.listdir(R)):
    if n.startswith("errbody_"):
        put("error_fields", "recorded_" + n[len("errbody_"):], b"\x00" + rd(n))
print("seeds written under", SEEDS)
