//! TLS for connections and cancel requests: the rustls client configuration built from the
//! resolved settings, the certificate verifiers that give libpq's `sslmode` meanings, and the
//! SSLRequest exchange (or `sslnegotiation=direct`) before the handshake.
//!
//! - The crypto provider is always `ring`, passed explicitly: the process-wide default is never
//!   consulted, so an application that links another provider cannot make connecting panic.
//! - Verification, as libpq (fe-secure-openssl.c `initialize_SSL`, `verify_cb`): with a root
//!   certificate file present, the chain is verified in every mode that uses TLS (so `require`
//!   behaves as `verify-ca`); without one, `require`/`prefer`/`allow` check only that the server
//!   holds the key of the certificate it shows (the handshake signature), and `verify-ca` /
//!   `verify-full` refuse to connect. `verify-full` adds the host name check: a `subjectAltName`
//!   dNSName or iPAddress must match `host` (rustls-webpki); when the certificate has no SAN of
//!   the host's kind, its subject's common name must match instead, as libpq's
//!   `pq_verify_peer_name_matches_certificate` (fe-secure-common.c) does
//!   (`wire::tls::common_names_without_san`; tests/tls_peers.rs,
//!   `verify_full_falls_back_to_the_common_name_only_without_a_matching_kind_of_san`).
//! - A server certificate that is itself the CA (the self-signed certificate the PostgreSQL
//!   docs make first) passes `require` but not `verify-*`: rustls-webpki refuses a CA
//!   certificate as an end entity (rustls/webpki#205). Sign a server certificate with the CA.
//! - SNI carries `host` when `sslsni` is on, and never an IP address (RFC 6066 §3).
//! - ALPN offers `postgresql` (what PostgreSQL 17 expects); with `sslnegotiation=direct` the
//!   server must select it, as libpq 17 requires.
//! - Bytes the server sends with its `S` are an error (CVE-2021-23222; see `wire::tls`).

use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{
    CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName, UnixTime,
};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{Host, RootCert, SslMode, Target, TlsParams, TlsVersion};
use crate::error::{Error, Result};
use crate::wire::frontend;
use crate::wire::tls::{common_names_without_san, name_matches, ssl_reply, HostKind, SslReply};

/// The ALPN protocol name PostgreSQL 17 registers and requires for direct TLS.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// A TLS stream over TCP (TLS is never used over Unix sockets, as in libpq).
pub(crate) type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// What the server certificate is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    /// Only the handshake signature (the server holds the key of the certificate it shows).
    Nothing,
    /// The chain to a trusted root, not the host name (`verify-ca`).
    Chain,
    /// The chain and the host name (`verify-full`).
    Full,
}

/// Everything needed to open TLS to the hosts of one set of settings; shared (one `Arc`) by
/// every connection and cancel request made with those settings.
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
    verify: Verify,
    direct: bool,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("verify", &self.verify)
            .field("direct", &self.direct)
            .finish_non_exhaustive()
    }
}

/// The settings a connector was built from, with the identity of each file it read: the same
/// settings and unchanged files give the same connector (and its TLS session cache), a
/// replaced certificate a new one.
#[derive(PartialEq, Eq)]
struct CacheKey {
    mode: SslMode,
    params: TlsParams,
    files: Vec<Option<(u64, Option<SystemTime>)>>,
}

/// Connectors built recently; a pool connects with the same settings again and again.
const CACHED_CONNECTORS: usize = 8;
static CACHE: Mutex<Vec<(CacheKey, Arc<TlsConnector>)>> = Mutex::new(Vec::new());

fn file_identity(path: Option<&Path>) -> Option<(u64, Option<SystemTime>)> {
    let meta = std::fs::metadata(path?).ok()?;
    Some((meta.len(), meta.modified().ok()))
}

/// The identity of every file in an `sslcrldir`, in name order: a CRL added, removed or
/// replaced there gives a new connector, as OpenSSL's hashed-directory lookup (which libpq
/// uses) reads the directory at each verification.
fn dir_identity(dir: Option<&Path>) -> Vec<Option<(u64, Option<SystemTime>)>> {
    let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return vec![None];
    };
    let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths.iter().map(|p| file_identity(Some(p))).collect()
}

impl TlsConnector {
    /// The connector for `mode` and `p`, or `None` when `mode` is `disable`. Reads the
    /// certificate files unless an identical connector was built from the same files.
    ///
    /// # Errors
    /// `verify-ca`/`verify-full` without root certificates; a file that cannot be read or
    /// parsed; an encrypted private key.
    pub(crate) fn for_params(mode: SslMode, p: &TlsParams) -> Result<Option<Arc<TlsConnector>>> {
        if mode == SslMode::Disable {
            return Ok(None);
        }
        let root_file = match &p.root {
            RootCert::File(f) => Some(f.as_path()),
            RootCert::System | RootCert::Unset => None,
        };
        let key = CacheKey {
            mode,
            params: p.clone(),
            files: [
                root_file,
                p.crl.as_deref(),
                p.cert.as_deref(),
                p.key.as_deref(),
            ]
            .into_iter()
            .map(file_identity)
            .chain(dir_identity(p.crl_dir.as_deref()))
            .collect(),
        };
        // A poisoned lock only means another thread panicked mid-update of a cache.
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = cache.iter().find(|(k, _)| *k == key) {
            return Ok(Some(Arc::clone(c)));
        }
        let connector = Arc::new(TlsConnector::build(mode, p)?);
        if cache.len() >= CACHED_CONNECTORS {
            cache.remove(0);
        }
        cache.push((key, Arc::clone(&connector)));
        Ok(Some(connector))
    }

    fn build(mode: SslMode, p: &TlsParams) -> Result<TlsConnector> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = load_roots(mode, &p.root)?;
        let verify = match (&roots, mode) {
            (None, _) => Verify::Nothing,
            (Some(_), SslMode::VerifyFull) => Verify::Full,
            (Some(_), _) => Verify::Chain,
        };
        let verifier: Arc<dyn ServerCertVerifier> = match roots {
            None => Arc::new(SignatureOnly(Arc::clone(&provider))),
            Some(roots) => {
                let crls = load_crls(p)?;
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    Arc::clone(&provider),
                )
                .with_crls(crls)
                .build()
                .map_err(|e| Error::tls_config(format!("certificate verifier: {e}")))?;
                match verify {
                    Verify::Full => Arc::new(Full(webpki)),
                    _ => Arc::new(ChainOnly(webpki)),
                }
            }
        };
        let versions = versions(p)?;
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|e| Error::tls_config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match client_identity(p)? {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::tls_config(format!("client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = p.sni;
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        Ok(TlsConnector {
            config: Arc::new(config),
            verify,
            direct: p.direct,
        })
    }

    /// Whether the handshake starts at once, without SSLRequest (`sslnegotiation=direct`).
    pub(crate) fn direct(&self) -> bool {
        self.direct
    }

    /// The name the certificate is checked against and SNI carries: `host` (not `hostaddr`),
    /// as libpq checks the name the user asked for.
    pub(crate) fn server_name(&self, target: &Target) -> Result<ServerName<'static>> {
        let name = match &target.host {
            Host::Tcp(name) => name.as_str(),
            Host::Unix(_) => "localhost",
        };
        match ServerName::try_from(name.to_owned()) {
            Ok(n) => Ok(n),
            Err(_) if self.verify != Verify::Full => Ok(ServerName::IpAddress(
                std::net::Ipv4Addr::UNSPECIFIED.into(),
            )),
            Err(e) => Err(Error::tls_config(format!(
                "host \"{name}\" cannot be checked against a certificate: {e}"
            ))),
        }
    }

    /// Sends SSLRequest on `tcp` and reads the answer with one read: `S` (the handshake may
    /// start), `N` (`tcp` goes on in plaintext) or `E` (an ErrorResponse, left unread).
    ///
    /// # Errors
    /// Bytes after `S` or `N` (CVE-2021-23222) and a first byte that is none of the three are
    /// protocol errors; EOF is [`Error::is_closed`].
    pub(crate) async fn request(tcp: &mut TcpStream) -> Result<SslReply> {
        let mut out = bytes::BytesMut::with_capacity(8);
        frontend::ssl_request(&mut out);
        tcp.write_all(&out).await.map_err(Error::io)?;
        // One read: whatever arrived with the answer is in it, and more than the answer byte is
        // an attack (CVE-2021-23222).
        let mut answer = [0u8; 16];
        let n = tcp.read(&mut answer).await.map_err(Error::io)?;
        if n == 0 {
            return Err(Error::closed());
        }
        ssl_reply(answer.get(..n).unwrap_or_default()).map_err(Error::protocol)
    }

    /// The TLS handshake on `tcp` with `name`.
    ///
    /// # Errors
    /// [`Error::is_tls`]: the handshake failed (certificate refused, no common protocol, the
    /// server hung up), naming rustls' reason; with `sslnegotiation=direct`, a server that did
    /// not select ALPN `postgresql`.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        name: ServerName<'static>,
    ) -> Result<TlsStream> {
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        let stream = connector
            .connect(name, tcp)
            .await
            .map_err(|e| Error::tls("TLS handshake failed", e))?;
        if self.direct {
            let (_, session) = stream.get_ref();
            if session.alpn_protocol() != Some(ALPN_POSTGRESQL) {
                return Err(Error::tls_config(
                    "direct SSL connection was established without ALPN protocol negotiation \
                     extension",
                ));
            }
        }
        Ok(stream)
    }
}

/// The root certificates for `mode`, or `None` when the chain is not to be verified.
fn load_roots(mode: SslMode, root: &RootCert) -> Result<Option<RootCertStore>> {
    let verify_required = matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull);
    let mut store = RootCertStore::empty();
    match root {
        RootCert::System => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::debug!(error = %e, "a system root certificate could not be loaded");
            }
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::tls_config(
                    "sslrootcert=system: no root certificate found in the system's trust store",
                ));
            }
        }
        RootCert::File(path) if path.exists() => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| pem_error("root certificate file", path, e))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::tls_config(format!(
                    "root certificate file \"{}\" holds no usable certificate",
                    path.display()
                )));
            }
        }
        RootCert::File(path) if verify_required => {
            return Err(Error::tls_config(format!(
                "root certificate file \"{}\" does not exist; either provide the file, use the \
                 system's trusted roots with sslrootcert=system, or change sslmode to disable \
                 server certificate verification",
                path.display()
            )))
        }
        RootCert::Unset if verify_required => {
            return Err(Error::tls_config(
                "could not get home directory to locate root certificate file; either provide \
                 the file, use the system's trusted roots with sslrootcert=system, or change \
                 sslmode to disable server certificate verification",
            ))
        }
        RootCert::File(_) | RootCert::Unset => return Ok(None),
    }
    Ok(Some(store))
}

/// `sslcrl` (a PEM file of CRLs) and every file of `sslcrldir`; a default `root.crl` that does
/// not exist is no CRL.
fn load_crls(p: &TlsParams) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    let mut crls = Vec::new();
    if let Some(file) = p.crl.as_deref().filter(|f| f.exists()) {
        let found = read_crls(file)?;
        if found.is_empty() {
            return Err(Error::tls_config(format!(
                "certificate revocation list file \"{}\" holds no CRL",
                file.display()
            )));
        }
        crls.extend(found);
    }
    if let Some(dir) = &p.crl_dir {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Error::tls_config(format!(
                "could not read CRL directory \"{}\": {e}",
                dir.display()
            ))
        })?;
        // Files that hold no CRL are skipped (OpenSSL reads only its hashed names there).
        for path in entries.flatten().map(|e| e.path()).filter(|p| p.is_file()) {
            crls.extend(read_crls(&path)?);
        }
    }
    Ok(crls)
}

/// Every CRL of a PEM file.
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>> {
    CertificateRevocationListDer::pem_file_iter(path)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| pem_error("certificate revocation list", path, e))
}

/// The client certificate chain and key, when the certificate file exists (libpq sends none
/// otherwise, even for a named file that is missing).
fn client_identity(
    p: &TlsParams,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>> {
    let Some(cert) = p.cert.as_deref().filter(|c| c.exists()) else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| pem_error("client certificate file", cert, e))?;
    if chain.is_empty() {
        return Err(Error::tls_config(format!(
            "client certificate file \"{}\" holds no certificate",
            cert.display()
        )));
    }
    let key_path = p.key.as_deref().filter(|k| k.exists()).ok_or_else(|| {
        Error::tls_config(format!(
            "certificate present, but not private key file \"{}\"",
            p.key.as_deref().unwrap_or(Path::new("")).display()
        ))
    })?;
    check_key_permissions(key_path)?;
    let mut text = Vec::new();
    std::fs::File::open(key_path)
        .and_then(|mut f| f.read_to_end(&mut text))
        .map_err(|e| {
            Error::tls_config(format!(
                "could not read private key file \"{}\": {e}",
                key_path.display()
            ))
        })?;
    // PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` header.
    if text.windows(9).any(|w| w == b"ENCRYPTED") {
        return Err(Error::unsupported(format!(
            "private key file \"{}\" is encrypted; wirepool does not decrypt keys \
             (sslpassword): store the key unencrypted with mode 0600",
            key_path.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(&text)
        .map_err(|e| pem_error("private key file", key_path, e))?;
    Ok(Some((chain, key)))
}

/// libpq's rule for a private key file (fe-secure-openssl.c): no access for others, and for
/// the group only when root owns the file (mode 0640).
#[cfg(unix)]
fn check_key_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::tls_config(format!(
            "could not stat private key file \"{}\": {e}",
            path.display()
        ))
    })?;
    let mode = meta.mode() & 0o777;
    let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if mode & !allowed != 0 {
        return Err(Error::tls_config(format!(
            "private key file \"{}\" has group or world access; file must have permissions \
             u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) \
             or less if owned by root",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_key_permissions(_: &Path) -> Result<()> {
    Ok(())
}

fn pem_error(what: &str, path: &Path, e: rustls::pki_types::pem::Error) -> Error {
    Error::tls_config(format!("could not load {what} \"{}\": {e}", path.display()))
}

/// The protocol versions between `ssl_min_protocol_version` and `ssl_max_protocol_version`
/// that rustls speaks (TLS 1.2 and 1.3; a lower bound below 1.2 allows nothing more).
fn versions(p: &TlsParams) -> Result<Vec<&'static rustls::SupportedProtocolVersion>> {
    let max = p.max_version.unwrap_or(TlsVersion::V1_3);
    let mut v = Vec::new();
    if p.min_version <= TlsVersion::V1_3 && max >= TlsVersion::V1_3 {
        v.push(&rustls::version::TLS13);
    }
    if p.min_version <= TlsVersion::V1_2 && max >= TlsVersion::V1_2 {
        v.push(&rustls::version::TLS12);
    }
    if v.is_empty() {
        return Err(Error::tls_config(
            "ssl_max_protocol_version below TLSv1.2: wirepool speaks TLS 1.2 and 1.3 only",
        ));
    }
    Ok(v)
}

/// `require` (and `prefer`, `allow`) without root certificates: any certificate is taken, but
/// the server must still prove it holds that certificate's key in the handshake.
#[derive(Debug)]
struct SignatureOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for SignatureOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: rustls-webpki's whole verification (chain, validity, CRLs) except the host
/// name. webpki checks the name last, after the chain, so a name error means the rest passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `verify-full`: rustls-webpki's whole verification, host name included (subjectAltName
/// only), plus libpq's fallback to the subject's Common Name when the certificate has no
/// subjectAltName of the host's kind (`pgtls_verify_peer_name_matches_certificate_guts` in
/// fe-secure-openssl.c), as the certificate PostgreSQL's own docs make with
/// `openssl req -subj "/CN=dbhost.yourdomain.com"` has. webpki checks the name last, so the
/// fallback is asked only about a certificate whose chain, validity and revocation passed.
#[derive(Debug)]
struct Full(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for Full {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verdict =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        let Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) = &verdict
        else {
            return verdict;
        };
        let (host, kind) = match server_name {
            ServerName::DnsName(name) => (name.as_ref().to_owned(), HostKind::Name),
            ServerName::IpAddress(ip) => {
                (std::net::IpAddr::from(*ip).to_string(), HostKind::Address)
            }
            _ => return verdict,
        };
        match common_names_without_san(end_entity.as_ref(), kind) {
            Ok(names) if names.iter().any(|cn| name_matches(cn, &host)) => {
                Ok(ServerCertVerified::assertion())
            }
            _ => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A non-blocking read of decrypted bytes, straight from the kernel (bypassing the runtime's
/// readiness cache, as `Stream::read_now` does for plaintext): `Ok(0)` for a close_notify or
/// EOF, `WouldBlock` when nothing is there.
pub(crate) fn read_now(tls: &mut TlsStream, buf: &mut [u8]) -> io::Result<usize> {
    let (tcp, session) = tls.get_mut();
    loop {
        match session.reader().read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => return other,
        }
        let got = session.read_tls(&mut &*SockRef::from(&*tcp))?;
        session
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if got == 0 {
            // EOF without close_notify: the reader reports it (UnexpectedEof) unless data is
            // left; either way nothing more will come.
            return match session.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                other => other,
            };
        }
    }
}

/// What a cancel request needs to reach the server the way its connection did: over TLS, with
/// the same settings and server name.
#[derive(Debug, Clone)]
pub(crate) struct CancelTls {
    connector: Arc<TlsConnector>,
    name: ServerName<'static>,
}

impl CancelTls {
    pub(crate) fn new(connector: Arc<TlsConnector>, name: ServerName<'static>) -> CancelTls {
        CancelTls { connector, name }
    }

    /// TLS on `tcp` for a CancelRequest. The key is never sent in plaintext on behalf of a
    /// connection that used TLS: a server answering `N` here is an error.
    pub(crate) async fn open(&self, mut tcp: TcpStream) -> Result<TlsStream> {
        if !self.connector.direct() {
            match TlsConnector::request(&mut tcp).await? {
                SslReply::Accepted => {}
                SslReply::Refused | SslReply::Error => {
                    return Err(Error::tls_config(
                        "the server refused TLS for the cancel request of a TLS connection; the \
                         cancel key is not sent in plaintext",
                    ))
                }
            }
        }
        self.connector.handshake(tcp, self.name.clone()).await
    }
}
