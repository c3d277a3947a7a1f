//! libpq's `require_auth` (PostgreSQL 16+, `fe-connect.c` / `fe-auth.c::check_expected_areq`):
//! which authentication methods the client lets the server use.
//!
//! A comma list of `password`, `md5`, `gss`, `sspi`, `scram-sha-256`, `none`. Plain entries
//! build an allow list (and, unless `none` is listed, demand that the server authenticates the
//! client at all); `!`-negated entries remove methods from the full set (`!none` demands that
//! some method is used). Mixing the two forms, unknown names and repeats are errors. The server
//! must then use an allowed method *and complete it*; a server that sends AuthenticationOk
//! without a completed exchange fails with "server did not complete authentication". This is
//! the client's defence against a server (or a MITM) downgrading to cleartext or to trust.

use std::fmt;
use std::str::FromStr;

/// An authentication method a server can ask for, as `require_auth` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    /// AuthenticationCleartextPassword.
    Password,
    /// AuthenticationMD5Password.
    Md5,
    /// AuthenticationGSS / GSSContinue.
    Gss,
    /// AuthenticationSSPI.
    Sspi,
    /// AuthenticationSASL with SCRAM-SHA-256.
    ScramSha256,
}

impl AuthMethod {
    fn bit(self) -> u8 {
        match self {
            AuthMethod::Password => 1,
            AuthMethod::Md5 => 1 << 1,
            AuthMethod::Gss => 1 << 2,
            AuthMethod::Sspi => 1 << 3,
            AuthMethod::ScramSha256 => 1 << 4,
        }
    }

    /// libpq's wording for the refused request.
    fn reason(self) -> &'static str {
        match self {
            AuthMethod::Password => "server requested a cleartext password",
            AuthMethod::Md5 => "server requested a hashed password",
            AuthMethod::Gss => "server requested GSSAPI authentication",
            AuthMethod::Sspi => "server requested SSPI authentication",
            AuthMethod::ScramSha256 => "server requested SASL authentication",
        }
    }
}

const ALL_METHODS: u8 = 0b1_1111;

/// libpq's `require_auth`: which authentication methods the client accepts from the server.
///
/// ```
/// use wirepool::wire::RequireAuth;
///
/// let scram_only: RequireAuth = "scram-sha-256".parse().unwrap();
/// assert!("password,!md5".parse::<RequireAuth>().is_err());
/// assert_eq!(scram_only.to_string(), "scram-sha-256");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequireAuth {
    /// Bit set of allowed [`AuthMethod`]s.
    allowed: u8,
    /// Whether the server must complete some authentication exchange (`none` not allowed).
    auth_required: bool,
    /// The setting as given, quoted in error messages like libpq does.
    spec: String,
}

impl Default for RequireAuth {
    /// Everything allowed, including no authentication at all (libpq's default).
    fn default() -> RequireAuth {
        RequireAuth {
            allowed: ALL_METHODS,
            auth_required: false,
            spec: String::new(),
        }
    }
}

impl RequireAuth {
    /// Whether this is the default (no restriction).
    pub fn is_default(&self) -> bool {
        self.spec.is_empty()
    }

    fn failed(&self, reason: &str) -> String {
        format!(
            "authentication method requirement \"{}\" failed: {reason}",
            self.spec
        )
    }

    /// Checks an authentication request before anything is sent in reply.
    pub(crate) fn check_request(&self, method: AuthMethod) -> Result<(), String> {
        if self.allowed & method.bit() == 0 {
            return Err(self.failed(method.reason()));
        }
        Ok(())
    }

    /// Checks AuthenticationOk: `completed` says whether the client finished an exchange.
    pub(crate) fn check_ok(&self, completed: bool) -> Result<(), String> {
        if self.auth_required && !completed {
            return Err(self.failed("server did not complete authentication"));
        }
        Ok(())
    }
}

impl fmt::Display for RequireAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

impl FromStr for RequireAuth {
    type Err = String;

    /// Parses libpq's syntax; the error is a message fit for the user (libpq's wording).
    fn from_str(s: &str) -> Result<RequireAuth, String> {
        if s.is_empty() {
            return Ok(RequireAuth::default());
        }
        // Plain lists start from nothing and add; negated lists start from everything.
        let mut r = RequireAuth {
            allowed: 0,
            auth_required: true,
            spec: s.to_owned(),
        };
        let mut negated = false;
        for (i, part) in s.split(',').map(str::trim).enumerate() {
            let method = match part.strip_prefix('!') {
                Some(m) => {
                    if i == 0 {
                        r.allowed = ALL_METHODS;
                        r.auth_required = false;
                        negated = true;
                    } else if !negated {
                        return Err(format!(
                            "negative require_auth method \"{part}\" cannot be mixed with non-negative methods"
                        ));
                    }
                    m
                }
                None if negated => {
                    return Err(format!(
                        "require_auth method \"{part}\" cannot be mixed with negative methods"
                    ))
                }
                None => part,
            };
            let duplicate =
                || format!("require_auth method \"{method}\" is specified more than once");
            let bit = match method {
                "password" => AuthMethod::Password.bit(),
                "md5" => AuthMethod::Md5.bit(),
                "gss" => AuthMethod::Gss.bit(),
                "sspi" => AuthMethod::Sspi.bit(),
                "scram-sha-256" => AuthMethod::ScramSha256.bit(),
                "none" => {
                    // `none` allows (or, negated, forbids) a login with no challenge at all.
                    if r.auth_required == negated {
                        return Err(duplicate());
                    }
                    r.auth_required = negated;
                    continue;
                }
                _ => return Err(format!("invalid require_auth value: \"{method}\"")),
            };
            let present = r.allowed & bit != 0;
            if present != negated {
                return Err(duplicate());
            }
            r.allowed ^= bit;
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_list_allows_only_listed_and_requires_auth() {
        let r: RequireAuth = "md5,scram-sha-256".parse().unwrap();
        assert!(r.check_request(AuthMethod::Password).is_err());
        assert!(r.check_request(AuthMethod::Md5).is_ok());
        assert!(r.check_request(AuthMethod::ScramSha256).is_ok());
        assert!(r.check_ok(false).is_err());
        assert!(r.check_ok(true).is_ok());
    }

    #[test]
    fn none_alone_forbids_every_challenge() {
        let r: RequireAuth = "none".parse().unwrap();
        assert!(r.check_request(AuthMethod::Password).is_err());
        assert!(r.check_ok(false).is_ok());
    }

    #[test]
    fn negated_list_removes_methods() {
        let r: RequireAuth = "!password".parse().unwrap();
        let err = r.check_request(AuthMethod::Password).unwrap_err();
        assert_eq!(
            err,
            "authentication method requirement \"!password\" failed: server requested a cleartext password"
        );
        assert!(r.check_request(AuthMethod::Md5).is_ok());
        assert!(r.check_ok(false).is_ok());
        let r: RequireAuth = "!none".parse().unwrap();
        assert!(r.check_ok(false).is_err());
        assert!(r.check_request(AuthMethod::Password).is_ok());
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "password,!md5",
            "!md5,password",
            "md5,md5",
            "!md5,!md5",
            "none,none",
            "x",
        ] {
            assert!(bad.parse::<RequireAuth>().is_err(), "{bad}");
        }
        assert_eq!(
            "password,!md5".parse::<RequireAuth>().unwrap_err(),
            "negative require_auth method \"!md5\" cannot be mixed with non-negative methods"
        );
        assert_eq!(
            "bogus".parse::<RequireAuth>().unwrap_err(),
            "invalid require_auth value: \"bogus\""
        );
    }
}
