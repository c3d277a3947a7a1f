//! The password file (libpq-pgpass): lines `hostname:port:database:username:password`, read the
//! way libpq's `passwordFromFile` and `pwdfMatchesString` read them.
//!
//! Rules kept from libpq: a field `*` matches anything; `\:` and `\\` escape; the first matching
//! line wins; lines starting with `#` are comments; trailing CR/LF are stripped. A file that is
//! missing or unreadable is silently skipped; one that is not a plain file, or that the group or
//! others may access (mode & 0o077 != 0), is skipped with a warning naming the file.
//!
//! Invariant: the warnings and errors here name the file, never its contents.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// A password file's text, read once per resolve and matched once per host.
pub(crate) struct PassFile {
    text: String,
}

impl PassFile {
    /// Reads `path`, or returns `None` if libpq would ignore it.
    pub(crate) fn load(path: &Path) -> Option<PassFile> {
        let mut file = File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            tracing::warn!(path = %path.display(), "password file is not a plain file; ignoring it");
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // libpq refuses such a file rather than trust a password others can read or replace.
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    "password file has group or world access; permissions should be u=rw (0600) or less; ignoring it"
                );
                return None;
            }
        }
        let mut text = String::new();
        if file.read_to_string(&mut text).is_err() {
            tracing::warn!(path = %path.display(), "password file is unreadable or not UTF-8; ignoring it");
            return None;
        }
        Some(PassFile { text })
    }

    /// The password of the first line matching all four keys; `None` if no line matches.
    pub(crate) fn lookup(
        &self,
        host: &str,
        port: &str,
        dbname: &str,
        user: &str,
    ) -> Option<String> {
        self.text
            .split('\n')
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.trim_end_matches(['\r', '\n']))
            .filter(|line| !line.is_empty())
            .find_map(|line| {
                let rest = match_field(line, host)?;
                let rest = match_field(rest, port)?;
                let rest = match_field(rest, dbname)?;
                match_field(rest, user).map(unescape_password)
            })
    }
}

/// If the first `:`-terminated field of `line` matches `token` (`*`, or equal after unescaping),
/// the text after that `:`.
fn match_field<'a>(line: &'a str, token: &str) -> Option<&'a str> {
    if let Some(rest) = line.strip_prefix("*:") {
        return Some(rest);
    }
    let mut chars = line.char_indices();
    let mut expected = token.chars();
    let mut want = expected.next();
    while let Some((i, c)) = chars.next() {
        let (c, escaped) = if c == '\\' {
            // A backslash at the end of the line escapes nothing: no match (libpq).
            (chars.next()?.1, true)
        } else {
            (c, false)
        };
        if c == ':' && !escaped && want.is_none() {
            return line.get(i + 1..);
        }
        if Some(c) != want {
            return None;
        }
        want = expected.next();
    }
    None
}

/// The password field, up to an unescaped `:` or the end; a trailing lone `\` is kept (libpq).
fn unescape_password(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        match c {
            ':' => break,
            '\\' => out.push(chars.next().unwrap_or('\\')),
            c => out.push(c),
        }
    }
    out
}
