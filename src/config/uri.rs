//! `postgresql://` and `postgres://` connection URIs: a port of libpq 15's
//! `conninfo_uri_parse_options`, `conninfo_uri_parse_params` and `conninfo_uri_decode`.
//!
//! Shape: `postgresql://[user[:password]@][host][:port][,host[:port]...][/dbname][?name=value[&...]]`.
//! libpq's quirks are kept on purpose, so a string means the same to wirepool as to psql: the hosts
//! and ports are joined with commas *before* percent-decoding (so `%2C` splits a host), the dbname
//! runs to `?` (a `/` or `#` in it is literal), a query parameter needs exactly one `=`, and later
//! parameters override earlier ones and the parts before `?`.
//!
//! Invariant: no error message contains the password. libpq quotes the whole URI in some errors;
//! wirepool quotes it with the password cut out.

use super::keyword::Keyword;
use super::Config;
use crate::error::Error;

/// The length of the URI scheme `s` starts with, if any. Lower case only, as in libpq: an
/// upper-case scheme is parsed as a keyword/value string (and fails there).
pub(crate) fn prefix_len(s: &str) -> Option<usize> {
    ["postgresql://", "postgres://"]
        .into_iter()
        .find(|p| s.starts_with(p))
        .map(str::len)
}

/// Parses a URI whose scheme [`prefix_len`] recognised.
pub(crate) fn parse(uri: &str, prefix: usize) -> Result<Config, Error> {
    let mut config = Config::new();
    let start = uri.get(prefix..).unwrap_or_default();
    let mut shown = uri.to_owned();

    // libpq looks for `@` before the first `/` only, so `?` and `:` may appear in the user part.
    let mut rest = start;
    if let Some(at) = start
        .find(['@', '/'])
        .filter(|&i| start[i..].starts_with('@'))
    {
        let userinfo = &start[..at];
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        if !user.is_empty() {
            config.put(Keyword::User, decode(user, false)?);
        }
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            config.put(Keyword::Password, decode(password, true)?);
            shown = format!("{}{user}:<redacted>@{}", &uri[..prefix], &start[at + 1..]);
        }
        rest = &start[at + 1..];
    }

    let (hosts, ports, terminator, rest) = parse_netlocs(rest, uri.len(), &shown)?;
    if !hosts.is_empty() {
        config.put(Keyword::Host, decode(&hosts, false)?);
    }
    if !ports.is_empty() {
        config.put(Keyword::Port, decode(&ports, false)?);
    }
    let (terminator, rest) = match terminator {
        Some('/') => {
            let (dbname, query) = match rest.split_once('?') {
                Some((dbname, query)) => (dbname, Some(query)),
                None => (rest, None),
            };
            // Like libpq, an empty dbname is not stored, so $PGDATABASE still applies.
            if !dbname.is_empty() {
                config.put(Keyword::Dbname, decode(dbname, false)?);
            }
            (query.map(|_| '?'), query.unwrap_or_default())
        }
        other => (other, rest),
    };
    if terminator == Some('?') {
        parse_params(rest, &mut config)?;
    }
    Ok(config)
}

/// Splits `host[:port][,host[:port]...]` into comma-joined host and port lists (still
/// percent-encoded), the character that ended it (`/`, `?` or none), and what follows that.
fn parse_netlocs<'a>(
    mut p: &'a str,
    uri_len: usize,
    shown: &str,
) -> Result<(String, String, Option<char>, &'a str), Error> {
    let (mut hosts, mut ports) = (String::new(), String::new());
    loop {
        let host;
        if let Some(inner) = p.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| {
                Error::config(format!(
                    "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{shown}\""
                ))
            })?;
            if close == 0 {
                return Err(Error::config(format!(
                    "IPv6 host address may not be empty in URI: \"{shown}\""
                )));
            }
            host = &inner[..close];
            p = &inner[close + 1..];
            if let Some(c) = p
                .chars()
                .next()
                .filter(|c| !matches!(c, ':' | '/' | '?' | ','))
            {
                let position = uri_len - p.len() + 1;
                return Err(Error::config(format!(
                    "unexpected character \"{c}\" at position {position} in URI (expected \":\" or \"/\"): \"{shown}\""
                )));
            }
        } else {
            let end = p.find([':', '/', '?', ',']).unwrap_or(p.len());
            host = &p[..end];
            p = &p[end..];
        }
        hosts.push_str(host);
        let (mut terminator, mut after) = split_first(p);
        if terminator == Some(':') {
            let end = after.find(['/', '?', ',']).unwrap_or(after.len());
            ports.push_str(&after[..end]);
            (terminator, after) = split_first(&after[end..]);
        }
        if terminator != Some(',') {
            return Ok((hosts, ports, terminator, after));
        }
        hosts.push(',');
        ports.push(',');
        p = after;
    }
}

/// The first character of `s` and the rest.
fn split_first(s: &str) -> (Option<char>, &str) {
    let mut chars = s.chars();
    (chars.next(), chars.as_str())
}

/// The `?name=value&...` part: each name must be a keyword; `ssl=true` is JDBC's `sslmode=require`.
fn parse_params(query: &str, config: &mut Config) -> Result<(), Error> {
    // As in libpq, a `&` ends a parameter, so one trailing `&` is fine but `?&` or `&&` is an
    // empty parameter, an error.
    let mut rest = query;
    while !rest.is_empty() {
        let (param, next) = rest.split_once('&').unwrap_or((rest, ""));
        rest = next;
        let Some((raw_name, raw_value)) = param.split_once('=') else {
            return Err(Error::config(format!(
                "missing key/value separator \"=\" in URI query parameter: \"{param}\""
            )));
        };
        if raw_value.contains('=') {
            return Err(Error::config(format!(
                "extra key/value separator \"=\" in URI query parameter: \"{raw_name}\""
            )));
        }
        let name = decode(raw_name, false)?;
        let value = decode(raw_value, name == "password")?;
        let (name, value) = match (name.as_str(), value.as_str()) {
            ("ssl", "true") => ("sslmode".to_owned(), "require".to_owned()),
            _ => (name, value),
        };
        config.store(&name, value, |name| {
            Error::config(format!("invalid URI query parameter: \"{name}\""))
        })?;
    }
    Ok(())
}

/// Percent-decodes one URI component. `%00` is refused (C strings cannot hold it), and so is a
/// result that is not UTF-8. `secret` keeps the value out of the error message.
fn decode(raw: &str, secret: bool) -> Result<String, Error> {
    let shown = || {
        if secret {
            "<the password>".to_owned()
        } else {
            format!("\"{raw}\"")
        }
    };
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let hex = |j: usize| bytes.get(j).and_then(|&d| char::from(d).to_digit(16));
        let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
            return Err(Error::config(format!(
                "invalid percent-encoded token: {}",
                shown()
            )));
        };
        if hi == 0 && lo == 0 {
            return Err(Error::config(format!(
                "forbidden value %00 in percent-encoded value: {}",
                shown()
            )));
        }
        // Two hex digits are at most 0xFF, so the cast cannot truncate.
        out.push((hi * 16 + lo) as u8);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| {
        Error::config(format!(
            "percent-decoded value is not valid UTF-8: {}",
            shown()
        ))
    })
}
