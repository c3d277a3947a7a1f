//! Certificates made at test time with the `openssl` command-line tool, so no committed
//! certificate can expire: a CA, server certificates it signs (SAN `DNS:localhost` and
//! `IP:127.0.0.1` unless told otherwise), client certificates, each valid for two days.
//!
//! Std-only (benches include it by path, using part of it). A missing `openssl` binary fails
//! with what to install (`apt-get install openssl`). Every file lives in one directory under the
//! system temp dir, removed on drop.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The key type of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256 (signatures with SHA-256).
    P256,
    /// ECDSA P-384 (signatures with SHA-384).
    P384,
    /// RSA 2048 (signatures with SHA-256).
    Rsa,
    /// Ed25519 (no separate digest).
    Ed25519,
}

impl KeyKind {
    fn newkey_args(self) -> Vec<&'static str> {
        match self {
            KeyKind::P256 => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            KeyKind::P384 => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
            KeyKind::Rsa => vec!["-newkey", "rsa:2048"],
            KeyKind::Ed25519 => vec!["-newkey", "ed25519"],
        }
    }

    /// The digest a signature by this key uses (`openssl x509 -req` needs none for Ed25519).
    fn digest(self) -> Option<&'static str> {
        match self {
            KeyKind::P256 | KeyKind::Rsa => Some("-sha256"),
            KeyKind::P384 => Some("-sha384"),
            KeyKind::Ed25519 => None,
        }
    }
}

/// A certificate and its private key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// The private key (PEM, unencrypted PKCS#8).
    pub key: PathBuf,
    kind: KeyKind,
}

impl Issued {
    /// The certificate's PEM text.
    pub fn cert_pem(&self) -> Vec<u8> {
        std::fs::read(&self.cert).unwrap_or_default()
    }

    /// The key's PEM text.
    pub fn key_pem(&self) -> Vec<u8> {
        std::fs::read(&self.key).unwrap_or_default()
    }
}

/// A directory of certificates made by one run.
#[derive(Debug)]
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A fresh, empty directory.
    ///
    /// # Errors
    /// `openssl` is missing (the message says what to install), or the directory cannot be made.
    pub fn new() -> Result<Pki, String> {
        match Command::new("openssl").arg("version").output() {
            Ok(out) if out.status.success() => {}
            _ => {
                return Err(
                    "the `openssl` command-line tool is needed to make test certificates: \
                     install it (Debian/Ubuntu: apt-get install openssl)"
                        .to_owned(),
                )
            }
        }
        let tmp = std::env::temp_dir();
        for n in 0..1000 {
            let dir = tmp.join(format!("wirepool-pki-{}-{n}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(Pki { dir }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            }
        }
        Err("no free wirepool-pki-* directory name".to_owned())
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A self-signed CA certificate named `name` (its CN too).
    ///
    /// # Errors
    /// `openssl` failing, with its output.
    pub fn ca(&self, name: &str, kind: KeyKind) -> Result<Issued, String> {
        let cert = self.dir.join(format!("{name}.crt"));
        let key = self.dir.join(format!("{name}.key"));
        let mut args = vec!["req", "-x509", "-nodes", "-days", "2"];
        args.extend(kind.newkey_args());
        args.extend(kind.digest());
        let subj = format!("/CN={name}");
        args.extend(["-subj", &subj, "-keyout"]);
        let (k, c) = (path_str(&key), path_str(&cert));
        args.extend([k.as_str(), "-out", c.as_str()]);
        args.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&args)?;
        Ok(Issued { cert, key, kind })
    }

    /// A server certificate signed by `ca`, CN `cn`, SAN `san` (`DNS:localhost,IP:127.0.0.1`;
    /// empty for none).
    ///
    /// # Errors
    /// `openssl` failing, with its output.
    pub fn server(
        &self,
        name: &str,
        ca: &Issued,
        kind: KeyKind,
        cn: &str,
        san: &str,
    ) -> Result<Issued, String> {
        let mut ext = String::from(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\n",
        );
        if !san.is_empty() {
            ext.push_str(&format!("subjectAltName={san}\n"));
        }
        self.leaf(name, ca, kind, cn, &ext)
    }

    /// As [`Pki::server`], with `sign` replacing the issuer's default digest option (`-sha1`,
    /// `-sha512`, or RSA-PSS: `-sha384 -sigopt rsa_padding_mode:pss`).
    ///
    /// # Errors
    /// `openssl` failing, with its output.
    pub fn server_signed(
        &self,
        name: &str,
        ca: &Issued,
        kind: KeyKind,
        san: &str,
        sign: &[&str],
    ) -> Result<Issued, String> {
        let ext = format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth\nsubjectAltName={san}\n"
        );
        self.leaf_signed(name, ca, kind, "localhost", &ext, Some(sign))
    }

    /// `issued`'s key rewritten by `openssl <args> -in KEY -out NEW` into a new file (mode
    /// 0600): `["ec"]` gives SEC1, `["rsa", "-traditional"]` PKCS#1, `["pkcs8", "-topk8",
    /// "-passout", "pass:x"]` an encrypted PKCS#8 key.
    ///
    /// # Errors
    /// `openssl` failing, with its output.
    pub fn convert_key(
        &self,
        issued: &Issued,
        suffix: &str,
        args: &[&str],
    ) -> Result<PathBuf, String> {
        let out = self.dir.join(format!(
            "{}.{suffix}",
            issued
                .key
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("key")
        ));
        let (k, o) = (path_str(&issued.key), path_str(&out));
        let mut all = args.to_vec();
        all.extend(["-in", k.as_str(), "-out", o.as_str()]);
        openssl(&all)?;
        set_mode(&out, 0o600)?;
        Ok(out)
    }

    /// The hash `openssl x509 -fingerprint <digest>` gives for `cert`: the hash of its DER, an
    /// oracle independent of wirepool's code.
    ///
    /// # Errors
    /// `openssl` failing, with its output.
    pub fn fingerprint(&self, cert: &Path, digest: &str) -> Result<Vec<u8>, String> {
        let c = path_str(cert);
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", digest, "-in", c.as_str()])
            .output()
            .map_err(|e| format!("running openssl: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let hex = text
            .trim()
            .rsplit('=')
            .next()
            .unwrap_or_default()
            .replace(':', "");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| format!("{text}: {e}")))
            .collect()
    }

    /// The DER of the PEM certificate `cert`.
    ///
    /// # Errors
    /// `openssl` failing, with its output.
    pub fn der(&self, cert: &Path) -> Result<Vec<u8>, String> {
        let der = cert.with_extension("der");
        let (c, d) = (path_str(cert), path_str(&der));
        openssl(&[
            "x509",
            "-in",
            c.as_str(),
            "-outform",
            "DER",
            "-out",
            d.as_str(),
        ])?;
        std::fs::read(&der).map_err(|e| e.to_string())
    }

    /// A CRL (PEM, v2) signed by `ca` revoking `revoked`, made with `openssl ca -gencrl`.
    ///
    /// # Errors
    /// `openssl` failing, with its output.
    pub fn crl(&self, name: &str, ca: &Issued, revoked: &[&Issued]) -> Result<PathBuf, String> {
        let db = self.dir.join(format!("{name}.db"));
        std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
        let index = db.join("index.txt");
        std::fs::write(&index, "").map_err(|e| e.to_string())?;
        // A crlnumber file makes the CRL v2, the version rustls-webpki reads.
        std::fs::write(db.join("crlnumber"), "01\n").map_err(|e| e.to_string())?;
        let cnf = db.join("ca.cnf");
        std::fs::write(
            &cnf,
            format!(
                "[ca]\ndefault_ca = d\n[d]\ndatabase = {}\ncrlnumber = {}\ndefault_md = \
                 sha256\ndefault_crl_days = 2\n",
                index.display(),
                db.join("crlnumber").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let (c, k, f) = (path_str(&ca.cert), path_str(&ca.key), path_str(&cnf));
        for cert in revoked {
            let r = path_str(&cert.cert);
            openssl(&[
                "ca",
                "-config",
                f.as_str(),
                "-keyfile",
                k.as_str(),
                "-cert",
                c.as_str(),
                "-revoke",
                r.as_str(),
            ])?;
        }
        let out = self.dir.join(format!("{name}.crl"));
        let o = path_str(&out);
        openssl(&[
            "ca",
            "-config",
            f.as_str(),
            "-keyfile",
            k.as_str(),
            "-cert",
            c.as_str(),
            "-gencrl",
            "-out",
            o.as_str(),
        ])?;
        Ok(out)
    }

    /// A client certificate for `user` (its CN, which the server's `cert` method maps to the
    /// role) signed by `ca`.
    ///
    /// # Errors
    /// `openssl` failing, with its output.
    pub fn client(
        &self,
        name: &str,
        ca: &Issued,
        kind: KeyKind,
        user: &str,
    ) -> Result<Issued, String> {
        let ext = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                   extendedKeyUsage=clientAuth\n";
        self.leaf(name, ca, kind, user, ext)
    }

    fn leaf(
        &self,
        name: &str,
        ca: &Issued,
        kind: KeyKind,
        cn: &str,
        ext: &str,
    ) -> Result<Issued, String> {
        self.leaf_signed(name, ca, kind, cn, ext, None)
    }

    fn leaf_signed(
        &self,
        name: &str,
        ca: &Issued,
        kind: KeyKind,
        cn: &str,
        ext: &str,
        sign: Option<&[&str]>,
    ) -> Result<Issued, String> {
        let cert = self.dir.join(format!("{name}.crt"));
        let key = self.dir.join(format!("{name}.key"));
        let csr = self.dir.join(format!("{name}.csr"));
        let extfile = self.dir.join(format!("{name}.ext"));
        std::fs::write(&extfile, ext).map_err(|e| format!("writing {}: {e}", extfile.display()))?;
        let mut args = vec!["req", "-new", "-nodes"];
        args.extend(kind.newkey_args());
        let subj = format!("/CN={cn}");
        let (k, r) = (path_str(&key), path_str(&csr));
        args.extend(["-subj", &subj, "-keyout", k.as_str(), "-out", r.as_str()]);
        openssl(&args)?;
        let serial = format!(
            "0x{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos())
        );
        let (cc, ck, c, e) = (
            path_str(&ca.cert),
            path_str(&ca.key),
            path_str(&cert),
            path_str(&extfile),
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            r.as_str(),
            "-CA",
            cc.as_str(),
            "-CAkey",
            ck.as_str(),
            "-set_serial",
            serial.as_str(),
            "-days",
            "2",
            "-out",
            c.as_str(),
            "-extfile",
            e.as_str(),
        ];
        // The issuer's key decides the signature algorithm, unless told otherwise.
        match sign {
            Some(sign) => args.extend(sign),
            None => args.extend(ca.kind.digest()),
        }
        openssl(&args)?;
        set_mode(&key, 0o600)?;
        Ok(Issued { cert, key, kind })
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn openssl(args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .map_err(|e| format!("running openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
