//! Pure codec tests: every encoder against the reference bytes, every decoder message type, and
//! every `MAX_*` limit at exactly the limit and one past it. No server, no runtime.

use bytes::{BufMut, BytesMut};
use wirepool::wire::{
    frontend, Authentication, BackendMessage, Decoder, DecoderLimits, TransactionStatus, WireError,
    MAX_AUTH_MESSAGE_LEN, MAX_AUTH_RESPONSE_LEN, MAX_FRONTEND_MESSAGE_LEN, MAX_NOTIFICATION_LEN,
    MAX_PARAMETER_DESCRIPTION_LEN, MAX_SMALL_MESSAGE_LEN, MAX_STARTUP_MESSAGE_LEN,
    MAX_STARTUP_PACKET_LEN,
};

/// A backend message: tag, Int32 length (body + 4), body.
fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(u32::try_from(body.len()).unwrap() + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Decodes exactly one message from `bytes`, asserting it consumed everything.
fn decode_one(d: &mut Decoder, bytes: &[u8]) -> Result<Option<BackendMessage>, WireError> {
    let mut buf = BytesMut::from(bytes);
    let r = d.decode(&mut buf);
    if let Ok(Some(_)) = r {
        assert!(buf.is_empty(), "message must consume exactly 1 + len bytes");
    }
    r
}

fn ready_decoder() -> Decoder {
    let mut d = Decoder::new();
    decode_one(&mut d, &msg(b'Z', b"I")).unwrap();
    assert!(!d.in_startup());
    d
}

// ---- encoders -------------------------------------------------------------------------------

#[test]
fn startup_message_matches_reference_bytes() {
    let mut buf = BytesMut::new();
    frontend::startup_message([("user", "u"), ("database", "d")], &mut buf).unwrap();
    let expected: &[u8] = &[
        0x00, 0x00, 0x00, 0x1b, 0x00, 0x03, 0x00, 0x00, 0x75, 0x73, 0x65, 0x72, 0x00, 0x75, 0x00,
        0x64, 0x61, 0x74, 0x61, 0x62, 0x61, 0x73, 0x65, 0x00, 0x64, 0x00, 0x00,
    ];
    assert_eq!(&buf[..], expected);
}

#[test]
fn ssl_cancel_query_terminate_match_reference_bytes() {
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    assert_eq!(&buf[..], [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

    let mut buf = BytesMut::new();
    frontend::cancel_request(0x3278, [0xad, 0xa8, 0x55, 0x4b], &mut buf);
    assert_eq!(
        &buf[..],
        [0, 0, 0, 0x10, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0x32, 0x78, 0xad, 0xa8, 0x55, 0x4b]
    );

    let mut buf = BytesMut::new();
    frontend::query("select 1", &mut buf).unwrap();
    assert_eq!(&buf[..], b"\x51\x00\x00\x00\x0dselect 1\x00");

    let mut buf = BytesMut::new();
    frontend::terminate(&mut buf);
    assert_eq!(&buf[..], [0x58, 0, 0, 0, 4]);
}

#[test]
fn auth_responses_match_reference_bytes() {
    let mut buf = BytesMut::new();
    frontend::password_message(b"password", &mut buf).unwrap();
    assert_eq!(&buf[..], b"p\x00\x00\x00\x0dpassword\x00");

    let mut buf = BytesMut::new();
    frontend::sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc", &mut buf).unwrap();
    assert_eq!(
        &buf[..],
        b"p\x00\x00\x00\x21SCRAM-SHA-256\x00\x00\x00\x00\x0bn,,n=,r=abc"
    );

    let mut buf = BytesMut::new();
    frontend::sasl_response(b"c=biws", &mut buf).unwrap();
    assert_eq!(&buf[..], b"p\x00\x00\x00\x0ac=biws");

    let mut buf = BytesMut::new();
    frontend::copy_fail("no", &mut buf).unwrap();
    assert_eq!(&buf[..], b"f\x00\x00\x00\x07no\x00");
}

#[test]
fn embedded_nul_is_refused_and_buffer_left_intact() {
    let mut buf = BytesMut::from(&b"keep"[..]);
    assert_eq!(
        frontend::query("select 1\0; drop table t", &mut buf),
        Err(WireError::EmbeddedNul)
    );
    assert_eq!(
        frontend::startup_message([("user", "a\0b")], &mut buf),
        Err(WireError::EmbeddedNul)
    );
    assert_eq!(
        frontend::password_message(b"pw\0", &mut buf),
        Err(WireError::EmbeddedNul)
    );
    assert_eq!(
        frontend::sasl_initial_response("SCRAM\0", b"", &mut buf),
        Err(WireError::EmbeddedNul)
    );
    assert_eq!(&buf[..], b"keep");
}

#[test]
fn startup_packet_limit_exact_and_one_past() {
    // Fixed part: len 4 + version 4 + "user\0" 5 + value NUL 1 + final NUL 1 = 15 bytes.
    let exact = "x".repeat(MAX_STARTUP_PACKET_LEN - 15);
    let mut buf = BytesMut::new();
    frontend::startup_message([("user", exact.as_str())], &mut buf).unwrap();
    assert_eq!(buf.len(), MAX_STARTUP_PACKET_LEN);
    assert_eq!(
        &buf[..4],
        &u32::try_from(MAX_STARTUP_PACKET_LEN).unwrap().to_be_bytes()
    );

    let over = "x".repeat(MAX_STARTUP_PACKET_LEN - 14);
    let mut buf = BytesMut::new();
    assert_eq!(
        frontend::startup_message([("user", over.as_str())], &mut buf),
        Err(WireError::OutboundTooLong {
            limit: MAX_STARTUP_PACKET_LEN
        })
    );
    assert!(buf.is_empty());
}

#[test]
fn auth_response_limit_exact_and_one_past() {
    // Length field = 4 + password + NUL.
    let exact = vec![b'a'; MAX_AUTH_RESPONSE_LEN - 5];
    let mut buf = BytesMut::new();
    frontend::password_message(&exact, &mut buf).unwrap();
    assert_eq!(buf.len(), MAX_AUTH_RESPONSE_LEN + 1);
    let over = vec![b'a'; MAX_AUTH_RESPONSE_LEN - 4];
    let mut buf = BytesMut::new();
    assert_eq!(
        frontend::password_message(&over, &mut buf),
        Err(WireError::OutboundTooLong {
            limit: MAX_AUTH_RESPONSE_LEN
        })
    );
    assert!(buf.is_empty());
    // SASLResponse: length field = 4 + data.
    let mut buf = BytesMut::new();
    frontend::sasl_response(&vec![b'a'; MAX_AUTH_RESPONSE_LEN - 4], &mut buf).unwrap();
    assert!(frontend::sasl_response(&vec![b'a'; MAX_AUTH_RESPONSE_LEN - 3], &mut buf).is_err());
}

type Encoder = fn(&str, &mut BytesMut) -> Result<(), WireError>;

/// Query and CopyFail against the real `MAX_FRONTEND_MESSAGE_LEN` (1 GiB): a value longer than
/// the limit is refused before it is copied. The value is a zeroed allocation that is only
/// read, so the test costs no resident gigabyte. (The limit logic at exactly the limit and one
/// past it is unit-tested at a small limit in `src/wire/frontend.rs`.)
#[test]
fn frontend_message_limit_refuses_a_longer_value_before_copying_it() {
    let huge = String::from_utf8(vec![0; MAX_FRONTEND_MESSAGE_LEN + 1]).unwrap();
    for encode in [frontend::query as Encoder, frontend::copy_fail] {
        let mut buf = BytesMut::from(&b"keep"[..]);
        assert_eq!(
            encode(&huge, &mut buf),
            Err(WireError::OutboundTooLong {
                limit: MAX_FRONTEND_MESSAGE_LEN
            })
        );
        assert_eq!(&buf[..], b"keep");
    }
}

/// Query and CopyFail at exactly `MAX_FRONTEND_MESSAGE_LEN` and one past it, full size. Needs
/// about 2 GiB of memory, so it runs only when asked:
/// `cargo test --release --test wire_codec -- --ignored`.
#[test]
#[ignore = "allocates about 2 GiB; run with --ignored"]
fn frontend_message_limit_exact_and_one_past() {
    for (tag, encode) in [
        (b'Q', frontend::query as Encoder),
        (b'f', frontend::copy_fail),
    ] {
        // Length field = 4 + value + NUL.
        let exact = "x".repeat(MAX_FRONTEND_MESSAGE_LEN - 5);
        let mut buf = BytesMut::new();
        encode(&exact, &mut buf).unwrap();
        drop(exact);
        assert_eq!(buf.len(), 1 + MAX_FRONTEND_MESSAGE_LEN);
        assert_eq!(buf[0], tag);
        assert_eq!(
            &buf[1..5],
            &u32::try_from(MAX_FRONTEND_MESSAGE_LEN)
                .unwrap()
                .to_be_bytes()
        );
        drop(buf);

        let over = "x".repeat(MAX_FRONTEND_MESSAGE_LEN - 4);
        let mut buf = BytesMut::new();
        assert_eq!(
            encode(&over, &mut buf),
            Err(WireError::OutboundTooLong {
                limit: MAX_FRONTEND_MESSAGE_LEN
            })
        );
        assert!(buf.is_empty());
    }
}

// ---- decoder: message types -------------------------------------------------------------------

#[test]
fn authentication_requests() {
    let cases: Vec<(Vec<u8>, Authentication)> = vec![
        (vec![0, 0, 0, 0], Authentication::Ok),
        (vec![0, 0, 0, 2], Authentication::KerberosV5),
        (vec![0, 0, 0, 3], Authentication::CleartextPassword),
        (
            vec![0, 0, 0, 5, 0x24, 0xe3, 0x28, 0x3c],
            Authentication::Md5Password {
                salt: [0x24, 0xe3, 0x28, 0x3c],
            },
        ),
        (vec![0, 0, 0, 6], Authentication::ScmCredential),
        (vec![0, 0, 0, 7], Authentication::Gss),
        (vec![0, 0, 0, 9], Authentication::Sspi),
        (
            b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0".to_vec(),
            Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()],
            },
        ),
        (
            b"\0\0\0\x0br=abc".to_vec(),
            Authentication::SaslContinue {
                data: "r=abc".into(),
            },
        ),
        (
            b"\0\0\0\x0cv=xyz".to_vec(),
            Authentication::SaslFinal {
                data: "v=xyz".into(),
            },
        ),
        (
            b"\0\0\0\x08tok".to_vec(),
            Authentication::GssContinue { data: "tok".into() },
        ),
    ];
    for (body, expected) in cases {
        let got = decode_one(&mut Decoder::new(), &msg(b'R', &body));
        assert_eq!(got, Ok(Some(BackendMessage::Authentication(expected))));
    }
}

#[test]
fn authentication_malformed() {
    let mut d = Decoder::new();
    assert_eq!(
        decode_one(&mut d, &msg(b'R', &[0, 0, 0, 4])),
        Err(WireError::UnknownAuthCode(4))
    );
    // MD5 with a 3-byte salt; Ok with trailing bytes; SASL list without its final NUL.
    assert_eq!(
        decode_one(&mut d, &msg(b'R', &[0, 0, 0, 5, 1, 2, 3])),
        Err(WireError::UnexpectedEnd { tag: b'R' })
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'R', &[0, 0, 0, 0, 9])),
        Err(WireError::TrailingBytes { tag: b'R' })
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0")),
        Err(WireError::MissingNul { tag: b'R' })
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'R', b"\0\0")),
        Err(WireError::UnexpectedEnd { tag: b'R' })
    );
}

#[test]
fn startup_phase_messages() {
    let mut d = Decoder::new();
    assert_eq!(
        decode_one(&mut d, &msg(b'S', b"server_version\x0015.20\0")),
        Ok(Some(BackendMessage::ParameterStatus {
            name: "server_version".into(),
            value: "15.20".into()
        }))
    );
    assert_eq!(
        decode_one(
            &mut d,
            &[0x4b, 0, 0, 0, 0x0c, 0, 0, 0x32, 0x78, 0xad, 0xa8, 0x55, 0x4b]
        ),
        Ok(Some(BackendMessage::BackendKeyData {
            pid: 0x3278,
            key: [0xad, 0xa8, 0x55, 0x4b]
        }))
    );
    // 3.2-style variable-length key is not 3.0: trailing bytes.
    assert_eq!(
        decode_one(&mut d, &msg(b'K', &[0; 40])),
        Err(WireError::TrailingBytes { tag: b'K' })
    );
    assert_eq!(
        decode_one(&mut d, &[0x76, 0, 0, 0, 0x0c, 0, 3, 0, 0, 0, 0, 0, 0]),
        Ok(Some(BackendMessage::NegotiateProtocolVersion {
            version: 0x0003_0000,
            options: vec![]
        }))
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'v', b"\0\x03\0\0\0\0\0\x01_pq_.foo\0")),
        Ok(Some(BackendMessage::NegotiateProtocolVersion {
            version: 0x0003_0000,
            options: vec!["_pq_.foo".into()]
        }))
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'S', b"a\xff\0b\0")),
        Err(WireError::InvalidUtf8 { tag: b'S' })
    );
    // Query results are not valid before ReadyForQuery.
    assert_eq!(
        decode_one(&mut d, &msg(b'D', b"\0\0")),
        Err(WireError::UnexpectedMessage { tag: b'D' })
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'Z', b"X")),
        Err(WireError::InvalidTransactionStatus(b'X'))
    );
    for (b, s) in [
        (b'I', TransactionStatus::Idle),
        (b'T', TransactionStatus::InTransaction),
        (b'E', TransactionStatus::Failed),
    ] {
        assert_eq!(
            decode_one(&mut Decoder::new(), &msg(b'Z', &[b])),
            Ok(Some(BackendMessage::ReadyForQuery(s)))
        );
    }
}

#[test]
fn query_phase_messages() {
    let mut d = ready_decoder();
    let mut t = b"\0\x02".to_vec();
    for name in ["a", "b"] {
        t.extend_from_slice(name.as_bytes());
        t.extend_from_slice(&[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x17, 0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0,
        ]);
    }
    let Ok(Some(BackendMessage::RowDescription(rd))) = decode_one(&mut d, &msg(b'T', &t)) else {
        panic!("RowDescription expected");
    };
    assert_eq!(rd.len(), 2);
    let fields: Vec<_> = rd.fields().collect();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[1].name, "b");
    assert_eq!(fields[0].type_oid, 23);
    assert_eq!(fields[0].type_size, 4);
    assert_eq!(fields[0].type_modifier, -1);
    assert_eq!(fields[0].format, 0);

    let row = msg(b'D', b"\0\x03\0\0\0\x011\xff\xff\xff\xff\0\0\0\0");
    let Ok(Some(BackendMessage::DataRow(row))) = decode_one(&mut d, &row) else {
        panic!("DataRow expected");
    };
    let cols: Vec<Option<&[u8]>> = row.columns().collect();
    assert_eq!(cols, vec![Some(&b"1"[..]), None, Some(&b""[..])]);

    assert_eq!(
        decode_one(&mut d, &msg(b'C', b"SELECT 1\0")),
        Ok(Some(BackendMessage::CommandComplete("SELECT 1".into())))
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'I', b"")),
        Ok(Some(BackendMessage::EmptyQueryResponse))
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'A', b"\0\0\0\x07ch\0hi\0")),
        Ok(Some(BackendMessage::NotificationResponse {
            pid: 7,
            channel: "ch".into(),
            payload: "hi".into()
        }))
    );
    let Ok(Some(BackendMessage::CopyInResponse(c))) =
        decode_one(&mut d, &msg(b'G', &[0, 0, 1, 0, 0]))
    else {
        panic!("CopyInResponse expected");
    };
    assert_eq!((c.format, c.column_formats), (0, vec![0]));
    assert!(matches!(
        decode_one(&mut d, &msg(b'H', &[0, 0, 0])),
        Ok(Some(BackendMessage::CopyOutResponse(_)))
    ));
    assert!(matches!(
        decode_one(&mut d, &msg(b'W', &[1, 0, 0])),
        Ok(Some(BackendMessage::CopyBothResponse(_)))
    ));
    assert_eq!(
        decode_one(&mut d, &msg(b'd', b"1\t2\n")),
        Ok(Some(BackendMessage::CopyData("1\t2\n".into())))
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'c', b"")),
        Ok(Some(BackendMessage::CopyDone))
    );
    assert!(matches!(
        decode_one(&mut d, &msg(b'N', b"SNOTICE\0C00000\0Mhi\0\0")),
        Ok(Some(BackendMessage::NoticeResponse(_)))
    ));
    // Startup-only messages are refused after it.
    assert_eq!(
        decode_one(&mut d, &msg(b'R', &[0, 0, 0, 0])),
        Err(WireError::UnexpectedMessage { tag: b'R' })
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'K', &[0; 8])),
        Err(WireError::UnexpectedMessage { tag: b'K' })
    );
}

#[test]
fn data_row_malformed() {
    let mut d = ready_decoder();
    let cases: [(&[u8], WireError); 5] = [
        (b"\0\x02\0\0\0\x011", WireError::UnexpectedEnd { tag: b'D' }),
        (
            b"\0\x01\0\0\0\x05ab",
            WireError::UnexpectedEnd { tag: b'D' },
        ),
        (
            b"\0\x01\xff\xff\xff\xfe",
            WireError::NegativeLength { tag: b'D' },
        ),
        (b"\xff\xff", WireError::NegativeLength { tag: b'D' }),
        (
            b"\0\x01\0\0\0\x011x",
            WireError::TrailingBytes { tag: b'D' },
        ),
    ];
    for (body, err) in cases {
        assert_eq!(decode_one(&mut d, &msg(b'D', body)), Err(err), "{body:?}");
    }
    assert_eq!(
        decode_one(&mut d, &msg(b'C', b"SELECT 1\0x")),
        Err(WireError::TrailingBytes { tag: b'C' })
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'T', b"\0\x01a\0\0\0")),
        Err(WireError::UnexpectedEnd { tag: b'T' })
    );
}

/// RowDescription and CommandComplete are validated in full when decoded (they are kept as
/// their frames and read on demand), so every malformed body is refused there.
#[test]
fn row_description_and_command_tag_are_validated_when_decoded() {
    let mut d = ready_decoder();
    let attributes = [0u8; 18];
    let field = |name: &[u8]| [name, b"\0", &attributes[..]].concat();
    let t = |count: u8, fields: &[u8]| [&[0, count][..], fields].concat();
    let cases: [(Vec<u8>, WireError); 6] = [
        (t(1, &field(b"\xff")), WireError::InvalidUtf8 { tag: b'T' }),
        (t(1, b"a\0\0\0"), WireError::UnexpectedEnd { tag: b'T' }),
        (t(1, b"abc"), WireError::MissingNul { tag: b'T' }),
        (t(2, &field(b"a")), WireError::MissingNul { tag: b'T' }),
        (
            [t(1, &field(b"a")), vec![0]].concat(),
            WireError::TrailingBytes { tag: b'T' },
        ),
        (
            b"\xff\xff".to_vec(),
            WireError::NegativeLength { tag: b'T' },
        ),
    ];
    for (body, err) in cases {
        assert_eq!(decode_one(&mut d, &msg(b'T', &body)), Err(err), "{body:?}");
    }
    let Ok(Some(BackendMessage::RowDescription(empty))) = decode_one(&mut d, &msg(b'T', b"\0\0"))
    else {
        panic!("an empty RowDescription is valid");
    };
    assert!(empty.is_empty());
    assert_eq!(empty.fields().count(), 0);
    // Non-ASCII names pass the ASCII-first check's fallback, and read back whole.
    let Ok(Some(BackendMessage::RowDescription(rd))) = decode_one(
        &mut d,
        &msg(b'T', &t(2, &[field("é".as_bytes()), field(b"b")].concat())),
    ) else {
        panic!("a UTF-8 name is valid");
    };
    let names: Vec<&str> = rd.fields().map(|f| f.name).collect();
    assert_eq!(names, ["é", "b"]);
    assert_eq!(rd.fields().len(), 2);
    assert_eq!(format!("{rd:?}").matches("FieldDescription").count(), 2);

    // (TrailingBytes for 'C' is in `data_row_malformed`.)
    let cases: [(&[u8], WireError); 2] = [
        (b"SELECT\xff\0", WireError::InvalidUtf8 { tag: b'C' }),
        (b"SELECT 1", WireError::MissingNul { tag: b'C' }),
    ];
    for (body, err) in cases {
        assert_eq!(decode_one(&mut d, &msg(b'C', body)), Err(err), "{body:?}");
    }
    assert_eq!(
        decode_one(&mut d, &msg(b'C', "INSERT é\0".as_bytes())),
        Ok(Some(BackendMessage::CommandComplete("INSERT é".into())))
    );
    let Ok(Some(BackendMessage::CommandComplete(tag))) =
        decode_one(&mut d, &msg(b'C', b"INSERT 0 5\0"))
    else {
        panic!("CommandComplete expected");
    };
    assert_eq!(tag.as_str(), "INSERT 0 5");
    assert_eq!(format!("{tag:?}"), "\"INSERT 0 5\"");
}

#[test]
fn unknown_and_short_frames() {
    assert_eq!(
        decode_one(&mut Decoder::new(), &msg(b'?', b"")),
        Err(WireError::UnknownMessage { tag: b'?' })
    );
    assert_eq!(
        decode_one(&mut ready_decoder(), &msg(b'?', b"")),
        Err(WireError::UnknownMessage { tag: b'?' })
    );
    assert_eq!(
        decode_one(&mut Decoder::new(), &[b'R', 0, 0, 0, 3]),
        Err(WireError::LengthTooShort)
    );
    // Incomplete input consumes nothing.
    let mut buf = BytesMut::from(&[b'R', 0, 0, 0][..]);
    assert_eq!(Decoder::new().decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 4);
}

// ---- decoder: limits ----------------------------------------------------------------------------

/// A header declaring `len` (the body itself is not needed to check the limit).
fn header(tag: u8, len: usize) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(tag);
    b.put_u32(u32::try_from(len).unwrap());
    b
}

fn check_limit(d: &mut Decoder, tag: u8, limit: usize) {
    let mut at = header(tag, limit);
    assert_eq!(d.decode(&mut at), Ok(None), "tag {} at limit", tag as char);
    let mut past = header(tag, limit + 1);
    assert_eq!(
        d.decode(&mut past),
        Err(WireError::MessageTooLong { tag, limit }),
        "tag {} past limit",
        tag as char
    );
}

#[test]
fn startup_limits_exact_and_one_past() {
    let mut d = Decoder::new();
    check_limit(&mut d, b'R', MAX_AUTH_MESSAGE_LEN);
    for tag in *b"ENSKvZ" {
        check_limit(&mut d, tag, MAX_STARTUP_MESSAGE_LEN);
    }
}

#[test]
fn post_startup_limits_exact_and_one_past() {
    let max = 1 << 20;
    let mut d = Decoder::with_limits(DecoderLimits {
        max_message_len: max,
    });
    decode_one(&mut d, &msg(b'Z', b"I")).unwrap();
    for tag in *b"TDdEN" {
        check_limit(&mut d, tag, max);
    }
    check_limit(&mut d, b'A', MAX_NOTIFICATION_LEN);
    for tag in *b"SZCIGHWc123ns" {
        check_limit(&mut d, tag, MAX_SMALL_MESSAGE_LEN);
    }
    check_limit(&mut d, b't', MAX_PARAMETER_DESCRIPTION_LEN);
}

#[test]
fn extended_query_replies() {
    let mut d = ready_decoder();
    for (tag, want) in [
        (b'1', BackendMessage::ParseComplete),
        (b'2', BackendMessage::BindComplete),
        (b'3', BackendMessage::CloseComplete),
        (b'n', BackendMessage::NoData),
        (b's', BackendMessage::PortalSuspended),
    ] {
        assert_eq!(decode_one(&mut d, &msg(tag, b"")), Ok(Some(want)));
        assert_eq!(
            decode_one(&mut d, &msg(tag, b"x")),
            Err(WireError::TrailingBytes { tag })
        );
    }
    // The largest ParameterDescription: 65,535 OIDs, the count read as unsigned.
    let mut body = vec![0xff, 0xff];
    for i in 0..65_535u32 {
        body.extend_from_slice(&i.to_be_bytes());
    }
    assert_eq!(body.len() + 4, MAX_PARAMETER_DESCRIPTION_LEN);
    match decode_one(&mut d, &msg(b't', &body)) {
        Ok(Some(BackendMessage::ParameterDescription(p))) => {
            assert_eq!(p.types.len(), 65_535);
            assert_eq!(p.types[65_534], 65_534);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decode_one(&mut d, &msg(b't', &[0, 2, 0, 0, 0, 23])),
        Err(WireError::UnexpectedEnd { tag: b't' })
    );
    // Not during startup.
    let mut startup = Decoder::new();
    assert_eq!(
        decode_one(&mut startup, &msg(b'1', b"")),
        Err(WireError::UnexpectedMessage { tag: b'1' })
    );
}

#[test]
fn an_error_at_exactly_the_startup_limit_decodes() {
    let mut body = b"SFATAL\0C28P01\0M".to_vec();
    body.resize(MAX_STARTUP_MESSAGE_LEN - 4 - 2, b'x');
    body.extend_from_slice(b"\0\0");
    let r = decode_one(&mut Decoder::new(), &msg(b'E', &body));
    let Ok(Some(BackendMessage::ErrorResponse(e))) = r else {
        panic!("ErrorResponse expected, got {r:?}");
    };
    assert_eq!(e.code(), "28P01");
    assert_eq!(e.message().len(), MAX_STARTUP_MESSAGE_LEN - 4 - 2 - 15);
}

#[test]
fn huge_declared_length_is_refused_without_reserving() {
    let mut buf = BytesMut::from(&[b'D', 0x7f, 0xff, 0xff, 0xff][..]);
    let before = buf.capacity();
    assert!(matches!(
        ready_decoder().decode(&mut buf),
        Err(WireError::MessageTooLong { tag: b'D', .. })
    ));
    assert_eq!(buf.capacity(), before);
    let mut buf = BytesMut::from(&[b'D', 0xff, 0xff, 0xff, 0xff][..]);
    assert!(ready_decoder().decode(&mut buf).is_err());
}

// ---- ErrorResponse fields -------------------------------------------------------------------

#[test]
fn error_fields_all_codes() {
    let body = b"SERROR\0VERROR\0C22012\0Mdivision by zero\0Dmore\0Hdo not\0P11\0p3\0qselect\0\
Wctx\0sschema\0ttab\0ccol\0dtyp\0ncons\0Fint.c\0L869\0Rint4div\0Zunknown\0\0";
    let Ok(Some(BackendMessage::ErrorResponse(e))) =
        decode_one(&mut ready_decoder(), &msg(b'E', body))
    else {
        panic!("ErrorResponse expected");
    };
    assert_eq!(e.severity(), "ERROR");
    assert_eq!(e.severity_nonlocalized(), Some("ERROR"));
    assert_eq!(e.code(), "22012");
    assert_eq!(e.message(), "division by zero");
    assert_eq!(e.detail(), Some("more"));
    assert_eq!(e.hint(), Some("do not"));
    assert_eq!(e.position(), Some(11));
    assert_eq!(e.internal_position(), Some(3));
    assert_eq!(e.internal_query(), Some("select"));
    assert_eq!(e.where_(), Some("ctx"));
    assert_eq!(e.schema(), Some("schema"));
    assert_eq!(e.table(), Some("tab"));
    assert_eq!(e.column(), Some("col"));
    assert_eq!(e.datatype(), Some("typ"));
    assert_eq!(e.constraint(), Some("cons"));
    assert_eq!(e.file(), Some("int.c"));
    assert_eq!(e.line(), Some(869));
    assert_eq!(e.routine(), Some("int4div"));
    assert_eq!(
        e.to_string(),
        "ERROR 22012: division by zero\nDETAIL: more\nHINT: do not"
    );
}

#[test]
fn error_fields_edge_cases() {
    let mut d = ready_decoder();
    // No final terminator; a value without its NUL.
    assert_eq!(
        decode_one(&mut d, &msg(b'E', b"SERROR\0")),
        Err(WireError::MissingNul { tag: b'E' })
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'E', b"SERROR")),
        Err(WireError::MissingNul { tag: b'E' })
    );
    assert_eq!(
        decode_one(&mut d, &msg(b'N', b"SERROR\0\0x")),
        Err(WireError::TrailingBytes { tag: b'N' })
    );
    // Non-UTF-8 (a LATIN1 server message during startup) is decoded lossily; repeats: last wins;
    // a non-numeric position is dropped.
    let r = decode_one(
        &mut d,
        &msg(b'E', b"SFATAL\0Mcaf\xe9\0Cfirst\0Clast\0Pxx\0\0"),
    );
    let Ok(Some(BackendMessage::ErrorResponse(e))) = r else {
        panic!("ErrorResponse expected");
    };
    assert_eq!(e.message(), "caf\u{fffd}");
    assert_eq!(e.code(), "last");
    assert_eq!(e.position(), None);
    assert_eq!(e.to_string(), "FATAL last: caf\u{fffd}");
}

/// Tags of commands whose effect outlives their transaction mark the session changed; the
/// everyday ones do not. The comparison is on whole tags: `SETTINGS` is no `SET`.
#[test]
fn command_tags_that_change_the_session() {
    use wirepool::wire::CommandTag;
    for tag in [
        "SET",
        "RESET",
        "LISTEN",
        "UNLISTEN",
        "PREPARE",
        "DEALLOCATE",
        "DEALLOCATE ALL",
        "DECLARE CURSOR",
        "CREATE TABLE",
        "DISCARD ALL",
        "DISCARD TEMP",
    ] {
        assert!(CommandTag::from(tag).changes_session(), "{tag}");
    }
    for tag in [
        "SELECT 1",
        "INSERT 0 1",
        "UPDATE 3",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SHOW",
        "SETTINGS",
        "CREATE INDEX",
        "",
    ] {
        assert!(!CommandTag::from(tag).changes_session(), "{tag}");
    }
}
