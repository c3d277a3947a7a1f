//! Split invariance: a recorded server transcript decodes to the same messages whether it
//! arrives whole, split at any single byte offset, or one byte at a time. This is what makes the
//! I/O layer's read loop cancel-safe: an incomplete message is never consumed.

use bytes::BytesMut;
use wirepool::wire::{BackendMessage, Decoder};

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(u32::try_from(body.len()).unwrap() + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn concat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// PG15 trust login: R0, ParameterStatus × n, BackendKeyData, ReadyForQuery.
fn trust_startup() -> Vec<u8> {
    let mut parts = vec![msg(b'R', &[0, 0, 0, 0])];
    for (k, v) in [
        ("application_name", ""),
        ("client_encoding", "UTF8"),
        ("DateStyle", "ISO, MDY"),
        ("integer_datetimes", "on"),
        ("IntervalStyle", "postgres"),
        ("is_superuser", "on"),
        ("server_encoding", "UTF8"),
        ("server_version", "15.20 (Debian 15.20-0+deb12u1)"),
        ("session_authorization", "postgres"),
        ("standard_conforming_strings", "on"),
        ("TimeZone", "Etc/UTC"),
    ] {
        parts.push(msg(b'S', format!("{k}\0{v}\0").as_bytes()));
    }
    parts.push(msg(b'K', &[0, 0, 0x32, 0x78, 0xad, 0xa8, 0x55, 0x4b]));
    parts.push(msg(b'Z', b"I"));
    concat(&parts)
}

/// The server side of the psql SCRAM exchange (recorded in rust-postgres,
/// `postgres-protocol/src/authentication/sasl.rs`, test `exchange`), then the rest of the login.
fn scram_startup() -> Vec<u8> {
    let mut continue_ = vec![0, 0, 0, 11];
    continue_.extend_from_slice(
        b"r=9IZ2O01zb9IgiIZ1WJ/zgpJBjx/oIRLs02gGSHcw1KEty3eY,s=fs3IXBy7U7+IvVjZ,i=4096",
    );
    let mut final_ = vec![0, 0, 0, 12];
    final_.extend_from_slice(b"v=U+ppxD5XUKtradnv8e2MkeupiA8FU87Sg8CXzXHDAzw=");
    concat(&[
        msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"),
        msg(b'R', &continue_),
        msg(b'R', &final_),
        msg(b'R', &[0, 0, 0, 0]),
        msg(b'S', b"server_version\x0015.20\0"),
        msg(b'N', b"SWARNING\0C01000\0Mnot much\0\0"),
        msg(b'K', &[0, 0, 0, 1, 1, 2, 3, 4]),
        msg(b'Z', b"I"),
    ])
}

/// `select 1 as a, null::text as b; select ''; ; selec` and friends: T/D/C, NULLs, an empty
/// query, a notice, a notification, an error, then ReadyForQuery in a failed transaction.
fn simple_query() -> Vec<u8> {
    let field = |name: &str, oid: u8| {
        let mut f = name.as_bytes().to_vec();
        f.extend_from_slice(&[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, oid, 0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ]);
        f
    };
    let mut t = vec![0, 2];
    t.extend(field("a", 23));
    t.extend(field("b", 25));
    concat(&[
        msg(b'Z', b"I"),
        msg(b'T', &t),
        msg(b'D', b"\0\x02\0\0\0\x011\xff\xff\xff\xff"),
        msg(b'D', b"\0\x02\0\0\0\x0242\0\0\0\0"),
        msg(b'C', b"SELECT 2\0"),
        msg(b'N', b"SNOTICE\0VNOTICE\0C00000\0Mhello\0Wplpgsql\0\0"),
        msg(b'A', b"\0\0\x12\x34ch\0payload\0"),
        msg(b'I', b""),
        msg(b'C', b"BEGIN\0"),
        msg(
            b'E',
            b"SERROR\0VERROR\0C22012\0Mdivision by zero\0Fint.c\0L869\0Rint4div\0\0",
        ),
        msg(b'Z', b"E"),
    ])
}

fn decode_all(d: &mut Decoder, buf: &mut BytesMut, out: &mut Vec<BackendMessage>) {
    while let Some(m) = d.decode(buf).expect("valid transcript") {
        out.push(m);
    }
}

fn whole(bytes: &[u8]) -> Vec<BackendMessage> {
    let mut d = Decoder::new();
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    decode_all(&mut d, &mut buf, &mut out);
    assert!(buf.is_empty(), "every byte belongs to a message");
    out
}

fn assert_split_invariant(bytes: &[u8], expected_len: usize) {
    let reference = whole(bytes);
    assert_eq!(reference.len(), expected_len);
    for cut in 0..=bytes.len() {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&bytes[..cut]);
        let mut out = Vec::new();
        decode_all(&mut d, &mut buf, &mut out);
        buf.extend_from_slice(&bytes[cut..]);
        decode_all(&mut d, &mut buf, &mut out);
        assert_eq!(out, reference, "split at {cut}");
        assert!(buf.is_empty());
    }
    let mut d = Decoder::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for b in bytes {
        buf.extend_from_slice(&[*b]);
        decode_all(&mut d, &mut buf, &mut out);
    }
    assert_eq!(out, reference, "byte at a time");
}

#[test]
fn trust_startup_split_anywhere() {
    assert_split_invariant(&trust_startup(), 14);
}

#[test]
fn scram_startup_split_anywhere() {
    assert_split_invariant(&scram_startup(), 8);
}

#[test]
fn simple_query_split_anywhere() {
    let bytes = simple_query();
    assert_split_invariant(&bytes, 11);
    let msgs = whole(&bytes);
    let BackendMessage::DataRow(row) = &msgs[2] else {
        panic!("DataRow expected");
    };
    assert_eq!(
        row.columns().collect::<Vec<_>>(),
        vec![Some(&b"1"[..]), None]
    );
    assert!(matches!(msgs[7], BackendMessage::EmptyQueryResponse));
    let BackendMessage::ErrorResponse(e) = &msgs[9] else {
        panic!("ErrorResponse expected");
    };
    assert_eq!(e.code(), "22012");
}
