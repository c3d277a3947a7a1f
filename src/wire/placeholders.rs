//! How many parameters a statement's text takes: the highest `$n` outside string literals,
//! quoted identifiers, dollar-quoted bodies and comments, which is how the server counts them
//! for a Parse that leaves the types unspecified (`check_variable_parameters`,
//! `parse_param.c`: "the number of parameters is the highest `$n` referenced").
//!
//! The scan follows PostgreSQL's lexer (`scan.l`) where it matters for `$`:
//! - `'...'` with `''` inside; `E'...'` also with backslash escapes, and so is a plain string
//!   when `standard_conforming_strings` is off;
//! - `"..."` with `""` inside;
//! - `$tag$...$tag$` where the tag is empty or an identifier (a tag never starts with a digit,
//!   so `$1` is always a parameter);
//! - `-- ...` to the end of the line, and `/* ... */`, which nests;
//! - a `$` inside an unquoted identifier (`a$1`) is part of the identifier.
//!
//! Invariant: it never fails and never reads out of bounds; text the server would reject
//! (an unterminated string) ends the scan, and the server reports it.

/// The highest `$n` in `sql` outside literals, identifiers and comments (0 for none);
/// saturates at `usize::MAX` for absurd numbers.
pub(crate) fn parameter_count(sql: &str, standard_conforming_strings: bool) -> usize {
    let b = sql.as_bytes();
    let mut max = 0usize;
    let mut i = 0usize;
    while let Some(&c) = b.get(i) {
        i = match c {
            b'\'' => {
                let escapes = !standard_conforming_strings || escape_prefix(b, i);
                skip_quoted(b, i.saturating_add(1), b'\'', escapes)
            }
            b'"' => skip_quoted(b, i.saturating_add(1), b'"', false),
            b'-' if b.get(i.saturating_add(1)) == Some(&b'-') => skip_line(b, i),
            b'/' if b.get(i.saturating_add(1)) == Some(&b'*') => skip_block_comment(b, i),
            b'$' => {
                let digits = b
                    .get(i.saturating_add(1)..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|d| d.is_ascii_digit())
                    .count();
                if digits > 0 {
                    let n = b
                        .get(i.saturating_add(1)..i.saturating_add(1).saturating_add(digits))
                        .unwrap_or_default()
                        .iter()
                        .fold(0usize, |n, d| {
                            n.saturating_mul(10)
                                .saturating_add(usize::from(d.wrapping_sub(b'0')))
                        });
                    max = max.max(n);
                    i.saturating_add(1).saturating_add(digits)
                } else {
                    match dollar_tag(b, i) {
                        Some(tag_end) => skip_dollar_body(b, i, tag_end),
                        None => i.saturating_add(1),
                    }
                }
            }
            c if is_ident_start(c) => {
                // A whole identifier or keyword, `$` included: `a$1` names a column.
                let rest = b.get(i..).unwrap_or_default();
                let len = rest
                    .iter()
                    .take_while(|c| is_ident_char(**c))
                    .count()
                    .max(1);
                // `E'..'` (and `e'..'`) is scanned by the quote arm: stop before the quote.
                i.saturating_add(len)
            }
            _ => i.saturating_add(1),
        };
    }
    max
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// Whether the quote at `quote` opens an escape string: `E'` or `e'`, the `E` not being the end
/// of a longer identifier.
fn escape_prefix(b: &[u8], quote: usize) -> bool {
    let Some(prefix) = quote.checked_sub(1) else {
        return false;
    };
    if !matches!(b.get(prefix), Some(b'E' | b'e')) {
        return false;
    }
    prefix
        .checked_sub(1)
        .and_then(|p| b.get(p))
        .map_or(true, |c| !is_ident_char(*c))
}

/// Skips to just after the closing `quote` (a doubled quote stays inside; with `escapes`, a
/// backslash escapes the next byte).
fn skip_quoted(b: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    while let Some(&c) = b.get(i) {
        if escapes && c == b'\\' {
            i = i.saturating_add(2);
        } else if c == quote {
            if b.get(i.saturating_add(1)) == Some(&quote) {
                i = i.saturating_add(2);
            } else {
                return i.saturating_add(1);
            }
        } else {
            i = i.saturating_add(1);
        }
    }
    b.len()
}

fn skip_line(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .unwrap_or_default()
        .iter()
        .position(|c| *c == b'\n')
        .map_or(b.len(), |p| i.saturating_add(p).saturating_add(1))
}

fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        match (b.get(i), b.get(i.saturating_add(1))) {
            (Some(b'/'), Some(b'*')) => {
                depth = depth.saturating_add(1);
                i = i.saturating_add(2);
            }
            (Some(b'*'), Some(b'/')) => {
                depth = depth.saturating_sub(1);
                i = i.saturating_add(2);
                if depth == 0 {
                    return i;
                }
            }
            _ => i = i.saturating_add(1),
        }
    }
    b.len()
}

/// If a dollar-quote opening tag (`$$` or `$tag$`) starts at `i`, the index after it.
fn dollar_tag(b: &[u8], i: usize) -> Option<usize> {
    let start = i.checked_add(1)?;
    let rest = b.get(start..)?;
    let first = *rest.first()?;
    if first == b'$' {
        return start.checked_add(1);
    }
    if !is_ident_start(first) {
        return None;
    }
    let len = rest
        .iter()
        .take_while(|c| is_ident_start(**c) || c.is_ascii_digit())
        .count();
    (rest.get(len) == Some(&b'$')).then(|| start.saturating_add(len).saturating_add(1))
}

/// Skips the body of a dollar-quoted string whose opening tag is `b[open..tag_end]`, to just
/// after its closing tag.
fn skip_dollar_body(b: &[u8], open: usize, tag_end: usize) -> usize {
    let tag = b.get(open..tag_end).unwrap_or_default();
    let body = b.get(tag_end..).unwrap_or_default();
    body.windows(tag.len().max(1))
        .position(|w| w == tag)
        .map_or(b.len(), |p| {
            tag_end.saturating_add(p).saturating_add(tag.len())
        })
}

#[cfg(test)]
mod tests {
    use super::parameter_count as count;

    #[test]
    fn counts_the_highest_placeholder() {
        assert_eq!(count("select 1", true), 0);
        assert_eq!(count("select $1", true), 1);
        assert_eq!(count("select $2, $1, $10::int", true), 10);
        assert_eq!(count("insert into t values ($1,$2)", true), 2);
        assert_eq!(count("select $3", true), 3);
        assert_eq!(count("select $1+$1", true), 1);
        assert_eq!(count("select $99999999999999999999999", true), usize::MAX);
    }

    #[test]
    fn skips_literals_identifiers_comments_and_dollar_quotes() {
        assert_eq!(count("select '$1', $2", true), 2);
        assert_eq!(count("select 'it''s $3', $1", true), 1);
        assert_eq!(count(r"select E'\'$3', $1", true), 1);
        assert_eq!(count(r"select e'\\', $2", true), 2);
        // With standard_conforming_strings on, a backslash is an ordinary character.
        assert_eq!(count(r"select '\', $1", true), 1);
        assert_eq!(count(r"select '\'$4', $1", false), 1);
        assert_eq!(count(r#"select 1 as "$5", "a""$6" "#, true), 0);
        assert_eq!(count("select a$1 from t where x = $2", true), 2);
        assert_eq!(count("select 1 -- $7\n, $1", true), 1);
        assert_eq!(count("select /* $3 /* $4 */ $5 */ $1", true), 1);
        assert_eq!(count("select $$ $3 $$, $1", true), 1);
        assert_eq!(count("select $fn$ $3 $x$ $fn$, $2", true), 2);
        assert_eq!(count("do $body$ begin perform $1; end $body$", true), 0);
        assert_eq!(count("select 'unterminated $1", true), 0);
        assert_eq!(count("select $ ", true), 0);
        assert_eq!(count("select é$1, ö, $2", true), 2);
        assert_eq!(count("select $_$ x $_$, $1", true), 1);
    }
}
