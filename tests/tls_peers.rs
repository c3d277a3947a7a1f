//! TLS negotiation against scripted peers, for what a real PostgreSQL 15 will not do on
//! demand: bytes stuffed after the `S` (CVE-2021-23222), an ErrorResponse to SSLRequest, a
//! handshake that stalls, a handshake broken after the `S` (`prefer`'s plaintext retry), a
//! cancel request whose SSLRequest is refused, a certificate with only a common name, SNI, and
//! PostgreSQL 17's direct TLS (`sslnegotiation=direct`, ALPN `postgresql`). The TLS server side is rustls with
//! certificates made for this run (tests/support/pki.rs).

mod support;

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::fake_server::{self, error_response, read_startup, trust_handshake, FakeServer};
use support::pki::{Issued, KeyKind, Pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wirepool::{Config, Connection, Error};

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

struct Certs {
    /// Makes more (CRLs) and owns the directory the files live in.
    pki: Pki,
    ca: Issued,
    /// SAN `DNS:localhost`, `IP:127.0.0.1`.
    full: Issued,
    /// CN `localhost`, no SAN at all.
    cn_only: Issued,
    /// CN `localhost`, SAN `DNS:other.example` only.
    cn_and_other_san: Issued,
}

fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let make = || -> Result<Certs, String> {
            let pki = Pki::new()?;
            let ca = pki.ca("peer-ca", KeyKind::P256)?;
            let full = pki.server(
                "full",
                &ca,
                KeyKind::P256,
                "localhost",
                "DNS:localhost,IP:127.0.0.1",
            )?;
            let cn_only = pki.server("cn-only", &ca, KeyKind::P256, "localhost", "")?;
            let cn_and_other_san = pki.server(
                "cn-other-san",
                &ca,
                KeyKind::P256,
                "localhost",
                "DNS:other.example",
            )?;
            Ok(Certs {
                pki,
                ca,
                full,
                cn_only,
                cn_and_other_san,
            })
        };
        make().unwrap_or_else(|e| panic!("{e}"))
    })
}

/// A rustls server configuration showing `cert`, offering `alpn`.
fn acceptor(cert: &Issued, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    let chain = vec![CertificateDer::from_pem_file(&cert.cert).unwrap()];
    let key = PrivateKeyDer::from_pem_file(&cert.key).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// What the TLS peer saw of the client's hello.
#[derive(Debug, Default, Clone)]
struct Seen {
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
}

/// A peer that answers SSLRequest with `S` (unless `direct`), accepts TLS showing `cert`, and
/// logs the client in with `trust`; records SNI and the chosen ALPN.
fn tls_peer(cert: &Issued, alpn: &[&[u8]], direct: bool, seen: Arc<Mutex<Seen>>) -> FakeServer {
    let acceptor = acceptor(cert, alpn);
    FakeServer::start(move |mut tcp: TcpStream| async move {
        if !direct {
            assert_eq!(read_startup(&mut tcp).await, SSL_REQUEST);
            tcp.write_all(b"S").await.unwrap();
        }
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            return; // the client refused the certificate
        };
        {
            let (_, session) = tls.get_ref();
            let mut s = seen.lock().unwrap();
            s.sni = session.server_name().map(str::to_owned);
            s.alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        }
        read_startup(&mut tls).await;
        tls.write_all(&trust_handshake()).await.unwrap();
        tls.flush().await.unwrap();
        // Until the client closes.
        let mut sink = [0u8; 64];
        while matches!(tls.read(&mut sink).await, Ok(n) if n > 0) {}
    })
}

async fn connect(conninfo: &str) -> Result<Connection, Error> {
    let config: Config = conninfo.parse()?;
    Connection::connect(&config).await
}

fn conninfo(port: u16, host: &str, extra: &str) -> String {
    format!("host={host} hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres {extra}")
}

#[tokio::test]
async fn bytes_after_the_s_are_an_error_never_protocol() {
    for mode in ["prefer", "require"] {
        let server = FakeServer::start(|mut tcp: TcpStream| async move {
            assert_eq!(read_startup(&mut tcp).await, SSL_REQUEST);
            // An injected AuthenticationOk + ReadyForQuery riding on the S.
            let mut reply = b"S".to_vec();
            reply.extend(fake_server::auth_ok());
            reply.extend(fake_server::ready_for_query(b'I'));
            tcp.write_all(&reply).await.unwrap();
            let mut sink = [0u8; 64];
            while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        let e = connect(&conninfo(
            server.port(),
            "localhost",
            &format!("sslmode={mode}"),
        ))
        .await
        .unwrap_err();
        assert!(e.is_protocol(), "{mode}: {e}");
        assert!(e.to_string().contains("unencrypted data"), "{mode}: {e}");
        server.join().await;
    }
}

#[tokio::test]
async fn an_error_answer_to_sslrequest_is_not_shown() {
    let server = FakeServer::start(|mut tcp: TcpStream| async move {
        assert_eq!(read_startup(&mut tcp).await, SSL_REQUEST);
        let e = error_response(&[
            (b'S', "FATAL"),
            (b'C', "XX000"),
            (b'M', "click evil.example"),
        ]);
        tcp.write_all(&e).await.unwrap();
    });
    let e = connect(&conninfo(server.port(), "localhost", "sslmode=require"))
        .await
        .unwrap_err();
    assert!(e.is_tls(), "{e}");
    assert!(!e.to_string().contains("evil"), "{e}");
    server.join().await;
}

#[tokio::test]
async fn n_under_require_fails_and_under_prefer_goes_on_in_plaintext() {
    let server = FakeServer::start(|mut tcp: TcpStream| async move {
        assert_eq!(read_startup(&mut tcp).await, SSL_REQUEST);
        tcp.write_all(b"N").await.unwrap();
    });
    let e = connect(&conninfo(server.port(), "localhost", "sslmode=require"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("does not support SSL"), "{e}");
    server.join().await;

    let server = FakeServer::start(|mut tcp: TcpStream| async move {
        assert_eq!(read_startup(&mut tcp).await, SSL_REQUEST);
        tcp.write_all(b"N").await.unwrap();
        // The StartupMessage follows on the same socket, in plaintext.
        let startup = read_startup(&mut tcp).await;
        assert_eq!(fake_server::startup_params(&startup).0, 196_608);
        tcp.write_all(&trust_handshake()).await.unwrap();
        let mut sink = [0u8; 64];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let conn = connect(&conninfo(server.port(), "localhost", "sslmode=prefer"))
        .await
        .unwrap();
    conn.close().await.unwrap();
    server.join().await;
}

#[tokio::test]
async fn a_stalled_handshake_is_bounded_by_connect_timeout() {
    let server = FakeServer::start(|mut tcp: TcpStream| async move {
        assert_eq!(read_startup(&mut tcp).await, SSL_REQUEST);
        tcp.write_all(b"S").await.unwrap();
        // Never answers the ClientHello.
        let mut sink = [0u8; 1024];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    });
    let started = Instant::now();
    let e = connect(&conninfo(
        server.port(),
        "localhost",
        "sslmode=require connect_timeout=2",
    ))
    .await
    .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// libpq's Common Name fallback under `verify-full`: a certificate with no subjectAltName of the
/// host's kind is checked by its CN (the certificate PostgreSQL's docs make with
/// `-subj "/CN=..."`); a CN that names another host fails, and a certificate that has a
/// `dNSName` is never checked by its CN.
#[tokio::test]
async fn verify_full_falls_back_to_the_common_name_only_without_a_matching_kind_of_san() {
    let c = certs();
    let ca = format!("sslmode=verify-full sslrootcert={}", c.ca.cert.display());
    let ok = |server: u16, host: &str| conninfo(server, host, &ca);

    // CN localhost, no SAN: the CN decides.
    let server = tls_peer(&c.cn_only, &[], false, Arc::default());
    let conn = connect(&ok(server.port(), "localhost")).await.unwrap();
    conn.close().await.unwrap();
    server.join().await;

    // CN localhost, no SAN, host 127.0.0.1: the CN names another host.
    let server = tls_peer(&c.cn_only, &[], false, Arc::default());
    let e = connect(&ok(server.port(), "127.0.0.1")).await.unwrap_err();
    assert!(
        e.is_tls() && e.to_string().contains("not valid for name"),
        "{e}"
    );
    server.join().await;

    // CN localhost, SAN DNS:other.example only: the SAN decides, so localhost fails.
    let server = tls_peer(&c.cn_and_other_san, &[], false, Arc::default());
    let e = connect(&ok(server.port(), "localhost")).await.unwrap_err();
    assert!(
        e.is_tls() && e.to_string().contains("not valid for name"),
        "{e}"
    );
    server.join().await;

    // CN localhost, SAN DNS:other.example only, host 127.0.0.1: no iPAddress entry, so the
    // CN is asked, and it does not name 127.0.0.1.
    let server = tls_peer(&c.cn_and_other_san, &[], false, Arc::default());
    let e = connect(&ok(server.port(), "127.0.0.1")).await.unwrap_err();
    assert!(e.is_tls(), "{e}");
    server.join().await;

    // verify-ca never checks a name.
    let server = tls_peer(&c.cn_and_other_san, &[], false, Arc::default());
    let conn = connect(&conninfo(
        server.port(),
        "localhost",
        &format!("sslmode=verify-ca sslrootcert={}", c.ca.cert.display()),
    ))
    .await
    .unwrap();
    conn.close().await.unwrap();
    server.join().await;
}

#[tokio::test]
async fn sni_carries_the_host_name_never_an_address_and_sslsni_0_turns_it_off() {
    let c = certs();
    let ca = format!("sslmode=verify-full sslrootcert={}", c.ca.cert.display());
    for (host, extra, expected) in [
        ("localhost", "", Some("localhost")),
        ("127.0.0.1", "", None),
        ("localhost", "sslsni=0", None),
    ] {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let server = tls_peer(&c.full, &[b"postgresql"], false, Arc::clone(&seen));
        let conn = connect(&conninfo(server.port(), host, &format!("{ca} {extra}")))
            .await
            .unwrap_or_else(|e| panic!("{host} {extra}: {e}"));
        conn.close().await.unwrap();
        server.join().await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.sni.as_deref(), expected, "{host} {extra}");
        assert_eq!(seen.alpn.as_deref(), Some(&b"postgresql"[..]));
    }
}

#[tokio::test]
async fn direct_tls_starts_at_once_with_alpn_postgresql() {
    let c = certs();
    let extra = format!(
        "sslnegotiation=direct sslmode=verify-full sslrootcert={}",
        c.ca.cert.display()
    );
    let seen = Arc::new(Mutex::new(Seen::default()));
    let server = tls_peer(&c.full, &[b"postgresql"], true, Arc::clone(&seen));
    let conn = connect(&conninfo(server.port(), "localhost", &extra))
        .await
        .unwrap();
    conn.close().await.unwrap();
    server.join().await;
    assert_eq!(
        seen.lock().unwrap().alpn.as_deref(),
        Some(&b"postgresql"[..])
    );

    // A server that does not select ALPN `postgresql` is refused (libpq 17).
    let server = tls_peer(&c.full, &[], true, Arc::default());
    let e = connect(&conninfo(server.port(), "localhost", &extra))
        .await
        .unwrap_err();
    assert!(e.is_tls() && e.to_string().contains("ALPN"), "{e}");
}

#[tokio::test]
async fn direct_tls_needs_require_or_stronger() {
    for mode in ["disable", "allow", "prefer"] {
        let config: Config = format!("host=localhost sslnegotiation=direct sslmode={mode}")
            .parse()
            .unwrap();
        let e = config.validate().unwrap_err();
        assert!(
            e.is_config() && e.to_string().contains("weak sslmode"),
            "{mode}: {e}"
        );
    }
}

/// `sslcrl`: a CRL from the CA that lists the server certificate makes the chain check fail,
/// one that lists something else lets it pass (rustls-webpki's CRL support, every certificate of
/// the chain checked, an unknown status refused: OpenSSL's `X509_V_FLAG_CRL_CHECK_ALL` as libpq
/// sets it).
#[tokio::test]
async fn a_revoked_server_certificate_fails_with_sslcrl() {
    let c = certs();
    let other = c
        .pki
        .server(
            "revocable-other",
            &c.ca,
            KeyKind::P256,
            "localhost",
            "DNS:localhost",
        )
        .unwrap();
    let clean = c.pki.crl("clean", &c.ca, &[&other]).unwrap();
    let revoking = c.pki.crl("revoking", &c.ca, &[&c.full]).unwrap();
    let extra = |crl: &std::path::Path| {
        format!(
            "sslmode=verify-full sslrootcert={} sslcrl={}",
            c.ca.cert.display(),
            crl.display()
        )
    };
    let server = tls_peer(&c.full, &[], false, Arc::default());
    let conn = connect(&conninfo(server.port(), "localhost", &extra(&clean)))
        .await
        .unwrap();
    conn.close().await.unwrap();
    server.join().await;
    let server = tls_peer(&c.full, &[], false, Arc::default());
    let e = connect(&conninfo(server.port(), "localhost", &extra(&revoking)))
        .await
        .unwrap_err();
    assert!(e.is_tls() && e.to_string().contains("Revoked"), "{e}");
    server.join().await;
    // A CRL file that is not a CRL is an error, never ignored.
    let e = connect(&conninfo(
        server_port_unused(),
        "localhost",
        &extra(&c.ca.key),
    ))
    .await
    .unwrap_err();
    assert!(e.is_tls(), "{e}");
}

/// `sslcrldir`: every CRL in the directory is checked, as with `sslcrl`; a directory that
/// cannot be read is an error, never ignored.
#[tokio::test]
async fn a_revoked_server_certificate_fails_with_sslcrldir() {
    let c = certs();
    let revoking = c.pki.crl("revoking-dir", &c.ca, &[&c.full]).unwrap();
    let dir = std::env::temp_dir().join(format!("wirepool-crldir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let extra = |dir: &std::path::Path| {
        format!(
            "sslmode=verify-full sslrootcert={} sslcrldir={}",
            c.ca.cert.display(),
            dir.display()
        )
    };
    // An empty directory revokes nothing.
    let server = tls_peer(&c.full, &[], false, Arc::default());
    let conn = connect(&conninfo(server.port(), "localhost", &extra(&dir)))
        .await
        .unwrap();
    conn.close().await.unwrap();
    server.join().await;
    std::fs::copy(&revoking, dir.join("revoking.r0")).unwrap();
    let server = tls_peer(&c.full, &[], false, Arc::default());
    let e = connect(&conninfo(server.port(), "localhost", &extra(&dir)))
        .await
        .unwrap_err();
    assert!(e.is_tls() && e.to_string().contains("Revoked"), "{e}");
    server.join().await;
    std::fs::remove_dir_all(&dir).unwrap();
    let e = connect(&conninfo(server_port_unused(), "localhost", &extra(&dir)))
        .await
        .unwrap_err();
    assert!(e.is_tls() && e.to_string().contains("CRL directory"), "{e}");
}

/// A port nothing listens on: the errors it meets come before any socket is opened.
fn server_port_unused() -> u16 {
    1
}

/// The DER reader's hash choice against certificates OpenSSL signed each way, and the
/// channel binding data against `openssl x509 -fingerprint` (an independent hash of the DER).
#[test]
fn the_end_point_hash_follows_the_signature_algorithm() {
    use wirepool::wire::tls::{
        end_point_hash, tls_server_end_point, CertificateError, EndPointHash,
    };
    let pki = Pki::new().unwrap();
    let rsa_ca = pki.ca("h-rsa-ca", KeyKind::Rsa).unwrap();
    let ec_ca = pki.ca("h-ec-ca", KeyKind::P256).unwrap();
    let ed_ca = pki.ca("h-ed-ca", KeyKind::Ed25519).unwrap();
    let san = "DNS:localhost";
    let pss = |d| {
        vec![
            d,
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
        ]
    };
    // (name, issuer, leaf key, signing options, expected hash, the oracle's digest option)
    type Case<'a> = (
        &'a str,
        &'a Issued,
        KeyKind,
        Vec<&'a str>,
        Result<EndPointHash, CertificateError>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "sha1-rsa",
            &rsa_ca,
            KeyKind::Rsa,
            vec!["-sha1"],
            Ok(EndPointHash::Sha256),
            "-sha256",
        ),
        (
            "sha224-rsa",
            &rsa_ca,
            KeyKind::Rsa,
            vec!["-sha224"],
            Ok(EndPointHash::Sha224),
            "-sha224",
        ),
        (
            "sha256-rsa",
            &rsa_ca,
            KeyKind::Rsa,
            vec!["-sha256"],
            Ok(EndPointHash::Sha256),
            "-sha256",
        ),
        (
            "sha384-rsa",
            &rsa_ca,
            KeyKind::Rsa,
            vec!["-sha384"],
            Ok(EndPointHash::Sha384),
            "-sha384",
        ),
        (
            "sha512-rsa",
            &rsa_ca,
            KeyKind::Rsa,
            vec!["-sha512"],
            Ok(EndPointHash::Sha512),
            "-sha512",
        ),
        (
            "pss-sha256",
            &rsa_ca,
            KeyKind::Rsa,
            pss("-sha256"),
            Ok(EndPointHash::Sha256),
            "-sha256",
        ),
        (
            "pss-sha512",
            &rsa_ca,
            KeyKind::Rsa,
            pss("-sha512"),
            Ok(EndPointHash::Sha512),
            "-sha512",
        ),
        (
            "ecdsa-sha1",
            &ec_ca,
            KeyKind::P256,
            vec!["-sha1"],
            Ok(EndPointHash::Sha256),
            "-sha256",
        ),
        (
            "ecdsa-sha384",
            &ec_ca,
            KeyKind::P256,
            vec!["-sha384"],
            Ok(EndPointHash::Sha384),
            "-sha384",
        ),
        (
            "ecdsa-sha512",
            &ec_ca,
            KeyKind::P256,
            vec!["-sha512"],
            Ok(EndPointHash::Sha512),
            "-sha512",
        ),
        (
            "ed25519",
            &ed_ca,
            KeyKind::P256,
            vec![],
            Err(CertificateError::NoDigest),
            "",
        ),
    ];
    for (name, ca, kind, sign, expected, digest) in cases {
        let cert = pki.server_signed(name, ca, kind, san, &sign).unwrap();
        let der = pki.der(&cert.cert).unwrap();
        assert_eq!(end_point_hash(&der), expected, "{name}");
        if expected.is_ok() {
            let oracle = pki.fingerprint(&cert.cert, digest).unwrap();
            assert_eq!(tls_server_end_point(&der).unwrap(), oracle, "{name}");
        }
        // Every truncation is refused without a panic.
        for cut in 0..der.len().min(600) {
            assert!(end_point_hash(&der[..cut]).is_err(), "{name} cut at {cut}");
        }
    }
}

/// How a scripted peer breaks the TLS handshake after answering `S`.
#[derive(Debug, Clone, Copy)]
enum Break {
    /// Bytes that are not a TLS record.
    Garbage,
    /// A fatal `handshake_failure` alert (RFC 8446 §6: level 2, description 40).
    Alert,
    /// The socket closed right after the `S`.
    Close,
    /// A real handshake showing a certificate the client's root does not sign.
    UntrustedCertificate,
}

/// A peer whose first connection answers `S` and then breaks the handshake as `how` says, and
/// whose later connections log in with `trust` in plaintext; `first_bytes` records, per
/// connection, the first startup packet it read (SSLRequest, or the plaintext StartupMessage).
fn broken_then_plaintext(how: Break, first_bytes: Arc<Mutex<Vec<Vec<u8>>>>) -> FakeServer {
    let acceptor = acceptor(&certs().full, &[]);
    let connection = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    FakeServer::accept_many(move |mut tcp: TcpStream| {
        let (acceptor, first_bytes) = (acceptor.clone(), Arc::clone(&first_bytes));
        let n = connection.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let packet = read_startup(&mut tcp).await;
            first_bytes.lock().unwrap().push(packet.clone());
            if n > 0 {
                tcp.write_all(&trust_handshake()).await.unwrap();
                let mut sink = [0u8; 64];
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            assert_eq!(packet, SSL_REQUEST);
            tcp.write_all(b"S").await.unwrap();
            if matches!(how, Break::Garbage | Break::Alert) {
                // The answer comes after the ClientHello: bytes riding on the `S` would be the
                // CVE-2021-23222 case instead, a fatal error in every sslmode.
                let mut hello = [0u8; 4096];
                assert!(tcp.read(&mut hello).await.unwrap() > 0);
            }
            match how {
                Break::Garbage => tcp
                    .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                    .await
                    .unwrap(),
                Break::Alert => tcp.write_all(&[21, 3, 3, 0, 2, 2, 40]).await.unwrap(),
                Break::Close => return,
                Break::UntrustedCertificate => {
                    // The client aborts the handshake once it has seen the certificate.
                    let _ = acceptor.accept(tcp).await;
                    return;
                }
            }
            let mut sink = [0u8; 1024];
            while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
        }
    })
}

/// libpq fe-connect.c (`PQconnectPoll`, `CONNECTION_SSL_STARTUP`): under `prefer`, a TLS
/// handshake that fails after the server's `S` is retried on a new connection in plaintext;
/// under `require`, it is the error, and no plaintext connection is opened.
#[tokio::test]
async fn prefer_retries_in_plaintext_after_a_failed_handshake_and_require_fails() {
    let c = certs();
    let other_ca = c.pki.ca("prefer-other-ca", KeyKind::P256).unwrap();
    let ssl_request = SSL_REQUEST.to_vec();
    for how in [
        Break::Garbage,
        Break::Alert,
        Break::Close,
        Break::UntrustedCertificate,
    ] {
        // A root file that did not sign the peer's certificate: `prefer` verifies the chain.
        let root = format!("sslrootcert={}", other_ca.cert.display());
        let peer = |mode: &str| {
            let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
            let server = broken_then_plaintext(how, Arc::clone(&seen));
            let info = conninfo(
                server.port(),
                "localhost",
                &format!("sslmode={mode} {root}"),
            );
            (server, seen, info)
        };

        let (server, seen, info) = peer("prefer");
        let conn = connect(&info)
            .await
            .unwrap_or_else(|e| panic!("{how:?}: prefer did not retry in plaintext: {e}"));
        assert_eq!(conn.parameter("server_version"), Some("15.0"), "{how:?}");
        conn.close().await.unwrap();
        server.join().await;
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen.len(),
            2,
            "{how:?}: a TLS attempt and a plaintext retry"
        );
        assert_eq!(seen[0], ssl_request, "{how:?}");
        let (version, params) = fake_server::startup_params(&seen[1]);
        assert_eq!(version, 196_608, "{how:?}: the retry is a StartupMessage");
        assert!(params.contains(&("user".into(), "postgres".into())));

        let (server, seen, info) = peer("require");
        let e = connect(&info).await.unwrap_err();
        assert!(e.is_tls(), "{how:?}: {e}");
        assert!(
            e.to_string().contains("TLS handshake failed"),
            "{how:?}: {e}"
        );
        if let Break::UntrustedCertificate = how {
            assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        }
        server.join().await;
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "{how:?}: require never retries"
        );
    }
}

/// A CancelRequest for a TLS connection travels over TLS (libpq 17 `PQcancelCreate`): a server
/// that answers its SSLRequest with `N` (or an ErrorResponse) gets an error from the client and
/// not one byte more, so the backend's cancel key never crosses the network in plaintext.
#[tokio::test]
async fn a_cancel_refused_tls_fails_and_never_sends_the_key_in_plaintext() {
    let c = certs();
    for answer in [
        b"N".to_vec(),
        error_response(&[(b'S', "FATAL"), (b'C', "08P01")]),
    ] {
        let after_answer: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let acceptor = acceptor(&c.full, &[]);
        let connection = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let recorded = Arc::clone(&after_answer);
        let reply = answer.clone();
        let server = FakeServer::accept_many(move |mut tcp: TcpStream| {
            let (acceptor, recorded, reply) =
                (acceptor.clone(), Arc::clone(&recorded), reply.clone());
            let n = connection.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                assert_eq!(read_startup(&mut tcp).await, SSL_REQUEST);
                if n > 0 {
                    // The cancel connection: refuse TLS, then keep everything the client sends
                    // until it closes.
                    tcp.write_all(&reply).await.unwrap();
                    let mut got = Vec::new();
                    let mut buf = [0u8; 256];
                    loop {
                        match tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await
                        {
                            Ok(Ok(0)) | Ok(Err(_)) => break,
                            Ok(Ok(k)) => got.extend_from_slice(&buf[..k]),
                            Err(_) => panic!("the client kept the refused cancel socket open"),
                        }
                    }
                    *recorded.lock().unwrap() = Some(got);
                    return;
                }
                tcp.write_all(b"S").await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                read_startup(&mut tls).await;
                tls.write_all(&trust_handshake()).await.unwrap();
                tls.flush().await.unwrap();
                let mut sink = [0u8; 64];
                while matches!(tls.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        });
        let conn = connect(&conninfo(
            server.port(),
            "localhost",
            &format!("sslmode=verify-full sslrootcert={}", c.ca.cert.display()),
        ))
        .await
        .unwrap();
        let key = conn.backend_key().unwrap();
        assert_eq!((key.pid, key.key), (4242, 0x5eed_i32.to_be_bytes()));
        let e = conn.cancel_token().cancel().await.unwrap_err();
        assert!(e.is_tls(), "{answer:?}: {e}");
        assert!(
            e.to_string().contains("not sent in plaintext"),
            "{answer:?}: {e}"
        );
        conn.close().await.unwrap();
        server.join().await;
        let got = after_answer.lock().unwrap().take();
        assert_eq!(
            got.as_deref(),
            Some(&[][..]),
            "{answer:?}: bytes after the refusal"
        );
    }
}

/// Wakes a `Notify`; counts as a reference to the task it stands for while anything holds it.
struct TaskWaker(tokio::sync::Notify);

impl std::task::Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.0.notify_one();
    }
}

/// A connection that goes idle keeps no waker of the task that connected it: otherwise an idle
/// pooled connection keeps that task's memory alive (tokio-rustls reads the socket once more
/// after the handshake, which leaves the task's waker registered there).
#[tokio::test]
async fn an_idle_connection_holds_no_waker_of_the_task_that_connected_it() {
    let c = certs();
    let tls = format!("sslmode=verify-full sslrootcert={}", c.ca.cert.display());
    for over_tls in [true, false] {
        let server = if over_tls {
            tls_peer(&c.full, &[], false, Arc::default())
        } else {
            FakeServer::start(|mut tcp: TcpStream| async move {
                read_startup(&mut tcp).await;
                tcp.write_all(&trust_handshake()).await.unwrap();
                let mut sink = [0u8; 64];
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
            })
        };
        let extra = if over_tls {
            tls.as_str()
        } else {
            "sslmode=disable"
        };
        let config: Config = conninfo(server.port(), "localhost", extra).parse().unwrap();
        let task = Arc::new(TaskWaker(tokio::sync::Notify::new()));
        let waker = std::task::Waker::from(Arc::clone(&task));
        let mut connecting = Box::pin(Connection::connect(&config));
        let conn = loop {
            let mut cx = std::task::Context::from_waker(&waker);
            if let std::task::Poll::Ready(r) = connecting.as_mut().poll(&mut cx) {
                break r.unwrap();
            }
            task.0.notified().await;
        };
        drop((connecting, waker));
        assert_eq!(
            Arc::strong_count(&task),
            1,
            "tls {over_tls}: the idle connection still holds the connecting task's waker"
        );
        conn.close().await.unwrap();
        server.join().await;
    }
}
