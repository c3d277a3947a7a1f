//! Fuzz body `conninfo`: arbitrary libpq keyword/value strings and `postgres://` URIs through
//! `Config::from_str`, the printers, and resolution.
//!
//! Input: the whole input is the string (non-UTF-8 bytes become U+FFFD, as a caller holding
//! bytes would have to convert them).
//!
//! Invariants:
//! - parsing never panics;
//! - whatever parses, printed with `to_conninfo_string` and parsed again, is an equal `Config`,
//!   password included; printed with `Display` (which omits the password) it is equal but for
//!   the password;
//! - the password never shows in `Display`, `Debug`, or a resolution error (checked with a
//!   marker password that cannot occur in the input);
//! - resolution (values validated, defaults applied; no environment, no `.pgpass`) never panics,
//!   and an explicit password is what every resolved target carries.

use crate::Config;

/// Contains U+FFFE, which the input cannot: `from_utf8_lossy` maps bad bytes to U+FFFD, and
/// valid input with U+FFFE is rewritten below.
const MARKER: &str = "pw\u{FFFE}marker";

/// See the module header for the input layout and the invariants.
pub fn conninfo(data: &[u8]) {
    let input = String::from_utf8_lossy(data).replace('\u{FFFE}', "\u{FFFD}");
    let Ok(config) = input.parse::<Config>() else {
        return;
    };

    let printed = config.to_conninfo_string();
    match printed.parse::<Config>() {
        Ok(again) => assert!(again == config, "round trip through {printed:?} changed it"),
        Err(e) => panic!("{printed:?} (printed from {input:?}) does not parse: {e}"),
    }

    let shown = config.to_string();
    let mut again = match shown.parse::<Config>() {
        Ok(again) => again,
        Err(e) => panic!("Display {shown:?} does not parse: {e}"),
    };
    assert!(again.get_password().is_none(), "Display printed a password");
    if let Some(password) = config.get_password() {
        again.password(password.expose());
    }
    assert!(again == config, "round trip through Display changed it");

    let mut marked = config.clone();
    marked.password(MARKER);
    assert!(
        !marked.to_string().contains(MARKER),
        "Display shows the password"
    );
    assert!(
        !format!("{marked:?}").contains(MARKER),
        "Debug shows the password"
    );
    match marked.resolve_with(&|_| None, None) {
        Ok(params) => {
            for target in &params.targets {
                let password = target.password.as_ref().map(|p| p.expose());
                assert_eq!(password, Some(MARKER), "an explicit password wins");
            }
        }
        Err(e) => {
            assert!(!e.to_string().contains(MARKER), "error shows the password");
            assert!(
                !format!("{e:?}").contains(MARKER),
                "error Debug shows the password"
            );
        }
    }
}
