//! libpq keyword/value connection strings (`host=db port=5432 password='a b'`): the parser, a line
//! by line port of libpq's `conninfo_parse` (fe-connect.c), and the printer that inverts it.
//!
//! Invariant: for every `Config` the parser returns, `write` prints a string the parser turns back
//! into an equal `Config` (the fuzz target asserts it).
//!
//! Error messages quote the offending token as libpq does, with one exception right after a
//! `password` value, where a token may be the rest of a badly quoted password: it is echoed only
//! as an unknown keyword shaped like one (letters, digits, `_`: `pool_max_conns=10` copied from
//! another driver's string), with a hint to quote the password; otherwise it is withheld.

use std::fmt::{self, Write};

use super::keyword::Keyword;
use super::Config;
use crate::error::Error;

/// C's `isspace` in the "C" locale, which libpq's parser uses: unlike `char::is_ascii_whitespace`
/// it includes the vertical tab.
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// Parses a keyword/value string. Values are stored as given; nothing is validated but the
/// syntax and the keyword names.
pub(crate) fn parse(s: &str) -> Result<Config, Error> {
    let mut config = Config::new();
    let mut chars = s.chars().peekable();
    let mut after_password = false;
    loop {
        while chars.next_if(|&c| is_space(c)).is_some() {}
        if chars.peek().is_none() {
            return Ok(config);
        }
        let mut name = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && !is_space(c)) {
            name.push(c);
        }
        while chars.next_if(|&c| is_space(c)).is_some() {}
        let shown = shown_token(&name, after_password);
        if chars.next() != Some('=') {
            return Err(Error::config(format!(
                "missing \"=\" after {shown} in connection info string"
            )));
        }
        // Blanks after `=` are skipped, so in `host= port=1` the value of host is `port=1`.
        while chars.next_if(|&c| is_space(c)).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(Error::config(
                            "unterminated quoted string in connection info string",
                        ))
                    }
                    // A backslash at the very end escapes nothing; the next turn reports the
                    // missing quote.
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            // An unquoted value ends at a blank; a backslash escapes any character, blanks
            // included, and one at the very end is dropped (libpq: `password=x\` is `x`).
            while let Some(c) = chars.next() {
                match c {
                    c if is_space(c) => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        }
        config.store(&name, value, |_| {
            Error::config(format!(
                "invalid connection option {}",
                unknown_keyword(&name, after_password)
            ))
        })?;
        after_password = name == "password";
    }
}

/// How an error names a keyword token: quoted, or withheld if it may be part of a password.
fn shown_token(name: &str, after_password: bool) -> String {
    if after_password {
        "the token following the password (is the password quoted?)".to_owned()
    } else {
        format!("\"{name}\"")
    }
}

/// How the unknown-keyword error names `name`. After a password, a keyword-shaped token followed
/// by `=` is far likelier a keyword than the tail of a password holding both a blank and a `=`;
/// the hint covers the other case.
fn unknown_keyword(name: &str, after_password: bool) -> String {
    let keyword_shaped = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match (after_password, keyword_shaped) {
        (false, _) => format!("\"{name}\""),
        (true, true) => format!(
            "\"{name}\" (if it is part of the password, quote the password: password='...')"
        ),
        (true, false) => shown_token(name, true),
    }
}

/// Prints `config` as a keyword/value string, in [`Keyword::ALL`] order, the password only if
/// `with_password`.
pub(crate) fn write(config: &Config, out: &mut impl Write, with_password: bool) -> fmt::Result {
    let mut sep = "";
    for k in Keyword::ALL {
        if k == Keyword::Password && !with_password {
            continue;
        }
        let Some(value) = config.raw(k) else { continue };
        write!(out, "{sep}{}=", k.name())?;
        write_value(out, value)?;
        sep = " ";
    }
    Ok(())
}

/// Quotes a value when the unquoted form would not read back: empty, with blanks, quotes or
/// backslashes. Inside quotes only `'` and `\` need a backslash.
fn write_value(out: &mut impl Write, value: &str) -> fmt::Result {
    let plain = !value.is_empty() && !value.contains(|c| is_space(c) || c == '\'' || c == '\\');
    if plain {
        return out.write_str(value);
    }
    out.write_char('\'')?;
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    out.write_char('\'')
}
