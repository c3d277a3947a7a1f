//! TLS against a real PostgreSQL 15 with `ssl = on` and certificates made for this run
//! (tests/support/pki.rs): every sslmode against a TLS-only and a plaintext-only role, with
//! `pg_stat_ssl` saying what the session really used; certificate and host name checks; the
//! pool over TLS; cancel over TLS. The shared cluster (no TLS) stands in for a server that
//! answers `N`.
//!
//! pg_hba.conf of the TLS cluster, first match wins:
//!
//! | role         | `hostssl`       | `hostnossl` |
//! |--------------|-----------------|-------------|
//! | `tls_user`   | scram-sha-256   | reject      |
//! | `plain_user` | reject          | trust       |
//! | `cert_user`  | cert            | trust       |
//! | anyone else  | trust           | trust       |
//!
//! `scram_user` (scram-sha-256 either way) is the shared roles' (tests/support/cluster.rs).

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use support::cluster::{Cluster, Options};
use support::pki::{Issued, KeyKind, Pki};
use wirepool::{Config, Connection, Error, Pool, TransactionStatus};

struct TlsServer {
    cluster: Cluster,
    pki: Pki,
    ca: Issued,
    /// A CA that signed nothing the server shows.
    other_ca: Issued,
}

fn server() -> &'static TlsServer {
    static SERVER: OnceLock<Result<TlsServer, String>> = OnceLock::new();
    match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(e) => panic!("the TLS test cluster could not start: {e}"),
    }
}

fn start() -> Result<TlsServer, String> {
    let pki = Pki::new()?;
    let ca = pki.ca("wirepool-test-ca", KeyKind::P256)?;
    let other_ca = pki.ca("wirepool-other-ca", KeyKind::P256)?;
    let cert = pki.server(
        "server",
        &ca,
        KeyKind::P256,
        "localhost",
        "DNS:localhost,IP:127.0.0.1",
    )?;
    let cluster = Cluster::start_with(Options {
        conf: vec![
            "ssl = on".into(),
            "ssl_cert_file = '../server.crt'".into(),
            "ssl_key_file = '../server.key'".into(),
            "ssl_ca_file = '../ca.crt'".into(),
        ],
        hba: vec![
            "hostssl   all tls_user   127.0.0.1/32 scram-sha-256".into(),
            "hostnossl all tls_user   127.0.0.1/32 reject".into(),
            "hostssl   all plain_user 127.0.0.1/32 reject".into(),
            "hostnossl all plain_user 127.0.0.1/32 trust".into(),
            "hostssl   all cert_user  127.0.0.1/32 cert".into(),
        ],
        files: vec![
            ("server.crt".into(), cert.cert_pem(), 0o644),
            ("server.key".into(), cert.key_pem(), 0o600),
            ("ca.crt".into(), ca.cert_pem(), 0o644),
        ],
        setup_sql: vec![
            "CREATE ROLE tls_user LOGIN PASSWORD 'password'; CREATE ROLE plain_user LOGIN; \
             CREATE ROLE cert_user LOGIN;"
                .into(),
        ],
    })?;
    Ok(TlsServer {
        cluster,
        pki,
        ca,
        other_ca,
    })
}

impl TlsServer {
    /// A conninfo for `user` at `host` (the address is always 127.0.0.1), plus `extra`.
    fn conninfo(&self, host: &str, user: &str, extra: &str) -> String {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} dbname=postgres user={user} \
             password=password connect_timeout=10 {extra}",
            self.cluster.port()
        )
    }

    fn ca_file(&self) -> String {
        self.ca.cert.display().to_string()
    }

    /// A root certificate path that does not exist: `require` then verifies nothing, whatever
    /// `~/.postgresql/root.crt` holds on this machine.
    fn no_root_file(&self) -> String {
        self.pki.dir().join("absent-root.crt").display().to_string()
    }
}

async fn connect(conninfo: &str) -> Result<Connection, Error> {
    let config: Config = conninfo.parse()?;
    Connection::connect(&config).await
}

/// `pg_stat_ssl.ssl` for the session: whether the server sees it encrypted.
async fn uses_tls(conn: &mut Connection) -> bool {
    let rows = conn
        .simple_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .await
        .unwrap();
    rows[0].get(0) == Some("t")
}

/// Every sslmode against both roles: `Some(tls)` is a session that used TLS or not, `None` a
/// refusal. libpq gives the same table (fe-connect.c): `allow` retries with TLS after the
/// plaintext attempt is rejected, `prefer` retries in plaintext after the TLS one is.
#[tokio::test]
async fn every_sslmode_against_a_tls_only_and_a_plaintext_only_role() {
    let s = server();
    let table = [
        ("disable", None, Some(false)),
        ("allow", Some(true), Some(false)),
        ("prefer", Some(true), Some(false)),
        ("require", Some(true), None),
        ("verify-ca", Some(true), None),
        ("verify-full", Some(true), None),
    ];
    for (mode, tls_user, plain_user) in table {
        for (user, expected) in [("tls_user", tls_user), ("plain_user", plain_user)] {
            let conninfo = s.conninfo(
                "localhost",
                user,
                &format!("sslmode={mode} sslrootcert={}", s.ca_file()),
            );
            match (connect(&conninfo).await, expected) {
                (Ok(mut conn), Some(tls)) => {
                    assert_eq!(uses_tls(&mut conn).await, tls, "{mode} {user}");
                    conn.close().await.unwrap();
                }
                (Err(e), None) => assert!(
                    e.code() == Some("28000") || e.is_tls(),
                    "{mode} {user}: {e}"
                ),
                (Ok(_), None) => panic!("{mode} {user}: connected, expected a refusal"),
                (Err(e), Some(_)) => panic!("{mode} {user}: {e}"),
            }
        }
    }
}

#[tokio::test]
async fn require_without_root_certificates_takes_any_certificate() {
    let s = server();
    let extra = format!("sslmode=require sslrootcert={}", s.no_root_file());
    let mut conn = connect(&s.conninfo("localhost", "tls_user", &extra))
        .await
        .unwrap();
    assert!(uses_tls(&mut conn).await);
}

/// libpq's compatibility rule: `require` with a root file verifies the chain, as `verify-ca`.
#[tokio::test]
async fn require_with_a_root_file_verifies_the_chain() {
    let s = server();
    let extra = format!("sslmode=require sslrootcert={}", s.other_ca.cert.display());
    let e = connect(&s.conninfo("localhost", "tls_user", &extra))
        .await
        .unwrap_err();
    assert!(e.is_tls(), "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");
}

#[tokio::test]
async fn an_untrusted_ca_fails_and_says_so() {
    let s = server();
    for mode in ["verify-ca", "verify-full"] {
        let extra = format!("sslmode={mode} sslrootcert={}", s.other_ca.cert.display());
        let e = connect(&s.conninfo("localhost", "tls_user", &extra))
            .await
            .unwrap_err();
        assert!(e.is_tls() && e.is_permanent_connect_error(), "{mode}: {e}");
        let chain = error_chain(&e);
        assert!(chain.contains("UnknownIssuer"), "{mode}: {chain}");
    }
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let s = server();
    let ca = format!("sslrootcert={}", s.ca_file());
    for host in ["localhost", "127.0.0.1"] {
        let mut conn = connect(&s.conninfo(host, "tls_user", &format!("sslmode=verify-full {ca}")))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(uses_tls(&mut conn).await);
    }
    let e = connect(&s.conninfo(
        "db.wrong.example",
        "tls_user",
        &format!("sslmode=verify-full {ca}"),
    ))
    .await
    .unwrap_err();
    assert!(e.is_tls(), "{e}");
    let chain = error_chain(&e);
    assert!(chain.contains("NotValidForName"), "{chain}");
    let mut conn = connect(&s.conninfo(
        "db.wrong.example",
        "tls_user",
        &format!("sslmode=verify-ca {ca}"),
    ))
    .await
    .unwrap();
    assert!(uses_tls(&mut conn).await);
}

#[tokio::test]
async fn verify_modes_without_root_certificates_fail_before_connecting() {
    let s = server();
    for mode in ["verify-ca", "verify-full"] {
        // Port 1: nothing listens there, so a socket error would show an attempt was made.
        let conninfo = format!(
            "host=localhost hostaddr=127.0.0.1 port=1 user=x sslmode={mode} sslrootcert={}",
            s.no_root_file()
        );
        let e = connect(&conninfo).await.unwrap_err();
        assert!(e.is_tls() && e.is_permanent_connect_error(), "{mode}: {e}");
        assert!(e.to_string().contains("does not exist"), "{mode}: {e}");
        assert!(
            !e.to_string().contains("port 1"),
            "no socket was opened: {e}"
        );
    }
}

#[tokio::test]
async fn sslrootcert_system_allows_only_verify_full() {
    for mode in ["disable", "allow", "prefer", "require", "verify-ca"] {
        let config: Config = format!("host=localhost sslrootcert=system sslmode={mode}")
            .parse()
            .unwrap();
        let e = config.validate().unwrap_err();
        assert!(e.is_config(), "{mode}: {e}");
        assert!(e.to_string().contains("weak sslmode"), "{mode}: {e}");
    }
    let config: Config = "host=localhost sslrootcert=system".parse().unwrap();
    let params = config.resolve_with(&|_| None, None).unwrap();
    assert_eq!(params.sslmode, wirepool::config::SslMode::VerifyFull);
}

#[tokio::test]
async fn prefer_falls_back_to_plaintext_and_require_fails_against_a_server_without_tls() {
    let plain = Cluster::shared();
    let base = plain.conninfo("postgres", None);
    let mut conn = connect(&format!("{base} sslmode=prefer")).await.unwrap();
    assert!(!uses_tls(&mut conn).await);
    let e = connect(&format!("{base} sslmode=require"))
        .await
        .unwrap_err();
    assert!(e.is_tls(), "{e}");
    assert!(e.to_string().contains("does not support SSL"), "{e}");
}

#[tokio::test]
async fn cancel_goes_over_tls_and_interrupts_the_query() {
    let s = server();
    let extra = format!("sslmode=verify-full sslrootcert={}", s.ca_file());
    let mut conn = connect(&s.conninfo("localhost", "tls_user", &extra))
        .await
        .unwrap();
    let token = conn.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        token.cancel().await
    });
    let e = conn.simple_query("SELECT pg_sleep(30)").await.unwrap_err();
    assert_eq!(e.code(), Some("57014"), "{e}");
    canceller.await.unwrap().unwrap();
    assert!(uses_tls(&mut conn).await);
}

/// A query abandoned mid-flight over TLS (a request timeout drops its future): the pool cancels
/// it with a CancelRequest over TLS, closes the connection, and frees the slot only once the
/// backend has gone; the next checkout gets a new TLS session.
#[tokio::test]
async fn a_query_dropped_mid_flight_over_tls_is_cancelled_and_its_connection_replaced() {
    let s = server();
    let app = "wp_tls_dropped";
    let extra = format!(
        "sslmode=require sslrootcert={} application_name={app}",
        s.no_root_file()
    );
    let pool = Pool::builder(s.conninfo("localhost", "tls_user", &extra).as_str())
        .max_size(1)
        .open()
        .await
        .unwrap();
    let pid = {
        let mut conn = pool.connection().await.unwrap();
        let sleeping = conn.simple_query("select pg_sleep(30)");
        let abandoned = tokio::time::timeout(Duration::from_millis(300), sleeping).await;
        assert!(abandoned.is_err(), "pg_sleep(30) returned: {abandoned:?}");
        conn.backend_pid()
    };
    // max_size 1: this checkout waits for the abandoned connection's slot.
    let mut conn = pool
        .connection_timeout(Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(conn.backend_pid(), pid);
    assert!(uses_tls(&mut conn).await);
    let left = s
        .cluster
        .psql(&format!(
            "select count(*) from pg_stat_activity where pid = {pid}"
        ))
        .unwrap();
    assert_eq!(left.trim(), "0", "the abandoned backend is still there");
    drop(conn);
    pool.close().await;
}

/// The pool's checks over TLS: a server-terminated idle connection is never handed out (the
/// zero-RTT peek sees the TLS connection closed), and a connection returned inside a
/// transaction is rolled back and reused.
#[tokio::test]
async fn the_pool_works_over_tls() {
    let s = server();
    let app = "wp_tls_pool";
    let extra = format!(
        "sslmode=require sslrootcert={} application_name={app}",
        s.no_root_file()
    );
    let pool = Pool::builder(s.conninfo("localhost", "tls_user", &extra).as_str())
        .min_size(2)
        .max_size(2)
        .open()
        .await
        .unwrap();
    pool.wait(Duration::from_secs(10)).await.unwrap();
    {
        let mut conn = pool.connection().await.unwrap();
        assert!(uses_tls(&mut conn).await);
    }
    s.cluster
        .psql(&format!(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = '{app}'"
        ))
        .unwrap();
    wait_until_gone(&s.cluster, app).await;
    for i in 0..6 {
        let mut conn = pool.connection().await.unwrap();
        let rows = conn
            .simple_query("select 1")
            .await
            .unwrap_or_else(|e| panic!("checkout {i} got a dead connection: {e}"));
        assert_eq!(rows[0].get(0), Some("1"));
    }
    pool.close().await;

    // max_size 1: the next checkout waits for the background ROLLBACK to give the slot back.
    let pool = Pool::builder(s.conninfo("localhost", "tls_user", &extra).as_str())
        .max_size(1)
        .open()
        .await
        .unwrap();
    let pid = {
        let mut conn = pool.connection().await.unwrap();
        conn.simple_query("begin; create temp table abandoned(x int)")
            .await
            .unwrap();
        conn.backend_pid()
    };
    let mut conn = pool.connection().await.unwrap();
    assert_eq!(conn.transaction_status(), TransactionStatus::Idle);
    assert_eq!(
        conn.backend_pid(),
        pid,
        "the rolled-back connection is reused"
    );
    let e = conn
        .simple_query("select * from abandoned")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("42P01"), "{e}");
    drop(conn);
    pool.close().await;
}

#[tokio::test]
async fn channel_binding_require_over_tls_authenticates_with_scram_sha_256_plus() {
    let s = server();
    for user in ["tls_user", "scram_user"] {
        let extra = format!(
            "sslmode=verify-full sslrootcert={} channel_binding=require",
            s.ca_file()
        );
        let mut conn = connect(&s.conninfo("localhost", user, &extra))
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        assert!(uses_tls(&mut conn).await);
    }
}

/// `require_auth` and `channel_binding` compose as in libpq (fe-auth.c `check_expected_areq`;
/// PostgreSQL's src/test/ssl/t/002_scram.pl): over TLS, `require_auth=scram-sha-256` with
/// `channel_binding=require` logs in with SCRAM-SHA-256-PLUS; a server that asks for MD5 or a
/// cleartext password satisfies `require_auth=md5`/`password` and is still refused by
/// `channel_binding=require`; a server that asks for SCRAM is refused by `require_auth=md5`.
/// tests/handshake_script.rs shows that nothing is sent in reply to any of these requests.
#[tokio::test]
async fn require_auth_and_channel_binding_compose_over_tls() {
    let s = server();
    let tls = format!("sslmode=verify-full sslrootcert={}", s.ca_file());
    let mut conn = connect(&s.conninfo(
        "localhost",
        "scram_user",
        &format!("{tls} require_auth=scram-sha-256 channel_binding=require"),
    ))
    .await
    .unwrap();
    assert!(uses_tls(&mut conn).await);
    conn.close().await.unwrap();
    let not_sasl = "channel binding required but not supported by server's authentication request";
    for (user, spec, says) in [
        ("md5_user", "md5", not_sasl),
        ("pass_user", "password", not_sasl),
        (
            "scram_user",
            "md5",
            "authentication method requirement \"md5\" failed: server requested SASL \
             authentication",
        ),
    ] {
        let e = connect(&s.conninfo(
            "localhost",
            user,
            &format!("{tls} require_auth={spec} channel_binding=require"),
        ))
        .await
        .unwrap_err();
        assert!(e.is_auth(), "{user} {spec}: {e}");
        assert!(e.to_string().contains(says), "{user} {spec}: {e}");
        // Without channel_binding=require the same policy logs in.
        let mut conn = connect(&s.conninfo(
            "localhost",
            user,
            &format!("{tls} require_auth={spec},scram-sha-256"),
        ))
        .await
        .unwrap_or_else(|e| panic!("{user} {spec}: {e}"));
        assert!(uses_tls(&mut conn).await);
    }
}

/// Over plaintext the server offers SCRAM-SHA-256 only: `require` stops at the mechanism list,
/// before SASLInitialResponse, so no proof (nor anything derived from the password) is sent.
#[tokio::test]
async fn channel_binding_require_over_plaintext_fails_before_any_proof() {
    let plain = Cluster::shared();
    for mode in ["disable", "prefer"] {
        let conninfo = format!(
            "{} sslmode={mode} channel_binding=require",
            plain.conninfo("scram_user", Some("password"))
        );
        let e = connect(&conninfo).await.unwrap_err();
        assert!(e.is_auth(), "{mode}: {e}");
        assert!(
            e.to_string()
                .contains("did not offer an authentication method that supports channel binding"),
            "{mode}: {e}"
        );
    }
    // A trust login would answer AuthenticationOk at once: refused too.
    let conninfo = format!(
        "{} sslmode=disable channel_binding=require",
        plain.conninfo("postgres", None)
    );
    let e = connect(&conninfo).await.unwrap_err();
    assert!(e.to_string().contains("without channel binding"), "{e}");
}

/// The server's `cert` method: the client certificate's CN is the role. Keys in PKCS#8,
/// SEC1 and PKCS#1 PEM.
#[tokio::test]
async fn a_client_certificate_logs_in_with_the_cert_method() {
    let s = server();
    let p256 = s
        .pki
        .client("client-p256", &s.ca, KeyKind::P256, "cert_user")
        .unwrap();
    let rsa = s
        .pki
        .client("client-rsa", &s.ca, KeyKind::Rsa, "cert_user")
        .unwrap();
    let sec1 = s.pki.convert_key(&p256, "sec1", &["ec"]).unwrap();
    let pkcs1 = s
        .pki
        .convert_key(&rsa, "pkcs1", &["rsa", "-traditional"])
        .unwrap();
    assert!(std::fs::read_to_string(&sec1)
        .unwrap()
        .contains("BEGIN EC PRIVATE KEY"));
    assert!(std::fs::read_to_string(&pkcs1)
        .unwrap()
        .contains("BEGIN RSA PRIVATE KEY"));
    for (cert, key) in [
        (&p256.cert, &p256.key),
        (&p256.cert, &sec1),
        (&rsa.cert, &pkcs1),
    ] {
        let extra = format!(
            "sslmode=verify-full sslrootcert={} sslcert={} sslkey={}",
            s.ca_file(),
            cert.display(),
            key.display()
        );
        let mut conn = connect(&s.conninfo("localhost", "cert_user", &extra))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", key.display()));
        let rows = conn.simple_query("select current_user").await.unwrap();
        assert_eq!(rows[0].get(0), Some("cert_user"));
    }
    // Without a certificate the server refuses the `cert` role.
    let extra = format!(
        "sslmode=verify-full sslrootcert={} sslcert={}",
        s.ca_file(),
        s.no_root_file()
    );
    let e = connect(&s.conninfo("localhost", "cert_user", &extra))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("28000"), "{e}");
}

#[tokio::test]
async fn encrypted_and_readable_keys_are_refused_with_the_reason() {
    let s = server();
    let client = s
        .pki
        .client("client-keys", &s.ca, KeyKind::P256, "cert_user")
        .unwrap();
    let encrypted = s
        .pki
        .convert_key(
            &client,
            "enc",
            &["pkcs8", "-topk8", "-passout", "pass:secret"],
        )
        .unwrap();
    let with = |key: &std::path::Path| {
        format!(
            "sslmode=require sslrootcert={} sslcert={} sslkey={} sslpassword=secret",
            s.ca_file(),
            client.cert.display(),
            key.display()
        )
    };
    let e = connect(&s.conninfo("localhost", "cert_user", &with(&encrypted)))
        .await
        .unwrap_err();
    assert!(
        e.is_unsupported() && e.to_string().contains("encrypted"),
        "{e}"
    );
    assert!(!e.to_string().contains("secret"), "{e}");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&client.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = connect(&s.conninfo("localhost", "cert_user", &with(&client.key)))
        .await
        .unwrap_err();
    assert!(
        e.is_tls() && e.to_string().contains("group or world access"),
        "{e}"
    );
}

/// tls-server-end-point's hash follows the server certificate's signature (RFC 5929 §4.1): the
/// server (OpenSSL) computes the same data from the same rule, and refuses a mismatch with
/// 28000 "SCRAM channel binding check failed". One private cluster, restarted with each
/// certificate. An Ed25519 certificate has no digest: `require` fails before any proof,
/// `prefer` logs in unbound.
#[tokio::test]
async fn scram_plus_with_rsa_rsa_pss_ecdsa_p384_and_ed25519_server_certificates() {
    let pki = Pki::new().unwrap();
    let rsa_ca = pki.ca("rsa-ca", KeyKind::Rsa).unwrap();
    let p384_ca = pki.ca("p384-ca", KeyKind::P384).unwrap();
    let ed_ca = pki.ca("ed-ca", KeyKind::Ed25519).unwrap();
    let san = "DNS:localhost,IP:127.0.0.1";
    let pss = [
        "-sha384",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:digest",
    ];
    let variants = [
        (
            "rsa-sha256",
            pki.server_signed("v-rsa", &rsa_ca, KeyKind::Rsa, san, &["-sha256"]),
            true,
        ),
        (
            "rsa-pss-sha384",
            pki.server_signed("v-pss", &rsa_ca, KeyKind::Rsa, san, &pss),
            true,
        ),
        (
            "ecdsa-p384",
            pki.server_signed("v-p384", &p384_ca, KeyKind::P384, san, &["-sha384"]),
            true,
        ),
        (
            "ed25519",
            pki.server_signed("v-ed", &ed_ca, KeyKind::Ed25519, san, &[]),
            false,
        ),
    ];
    let first = variants[0].1.as_ref().unwrap();
    let cluster = Cluster::start_with(Options {
        conf: vec![
            "ssl = on".into(),
            "ssl_cert_file = '../server.crt'".into(),
            "ssl_key_file = '../server.key'".into(),
        ],
        files: vec![
            ("server.crt".into(), first.cert_pem(), 0o644),
            ("server.key".into(), first.key_pem(), 0o600),
        ],
        ..Options::default()
    })
    .unwrap();
    let base = format!(
        "host=localhost hostaddr=127.0.0.1 port={} dbname=postgres user=scram_user \
         password=password sslmode=require sslrootcert={}",
        cluster.port(),
        pki.dir().join("absent.crt").display()
    );
    for (name, cert, has_digest) in &variants {
        let cert = cert.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
        cluster
            .write_server_file("server.crt", &cert.cert_pem(), 0o644)
            .unwrap();
        cluster
            .write_server_file("server.key", &cert.key_pem(), 0o600)
            .unwrap();
        cluster.stop_server("fast").unwrap();
        cluster.start_again().unwrap();
        let required = connect(&format!("{base} channel_binding=require")).await;
        match (required, has_digest) {
            (Ok(mut conn), true) => assert!(uses_tls(&mut conn).await, "{name}"),
            (Err(e), false) => {
                assert!(
                    e.is_auth() && e.to_string().contains("Ed25519"),
                    "{name}: {e}"
                )
            }
            (Ok(_), false) => panic!("{name}: bound without a digest"),
            (Err(e), true) => panic!("{name}: {e}"),
        }
        let mut conn = connect(&format!("{base} channel_binding=prefer"))
            .await
            .unwrap_or_else(|e| panic!("{name} prefer: {e}"));
        assert!(uses_tls(&mut conn).await, "{name}");
    }
}

async fn wait_until_gone(cluster: &Cluster, app: &str) {
    for _ in 0..200 {
        let out = cluster
            .psql(&format!(
                "select count(*) from pg_stat_activity where application_name = '{app}'"
            ))
            .unwrap();
        if out.trim() == "0" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the server did not end the backends of {app}");
}

/// The error and its sources, one line.
fn error_chain(e: &Error) -> String {
    let mut s = format!("{e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(&format!(" / {c} ({c:?})"));
        cause = c.source();
    }
    s
}
