//! Connection settings: libpq's ground truth (one test per input, each row's expected result as
//! libpq 15's `PQconninfoParse` gives it), the print/parse round trip, password redaction, and
//! resolution (environment, defaults, multi-host lists, `.pgpass`) through `resolve_with` with a
//! fake environment, so no test reads or changes the process's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use wirepool::config::{
    ConnectParams, Host, LoadBalanceHosts, Password, RootCert, SslMode, TargetSessionAttrs,
    TlsVersion,
};
use wirepool::wire::ChannelBindingMode;
use wirepool::{Config, Error};

fn parse(s: &str) -> Config {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

/// The error message of a string that must not parse.
fn err(s: &str) -> String {
    match s.parse::<Config>() {
        Ok(c) => panic!("{s:?} should not parse, got {c:?}"),
        Err(e) => {
            assert!(e.is_config(), "{s:?}: {e}");
            e.to_string()
        }
    }
}

fn pw(c: &Config) -> Option<&str> {
    c.get_password().map(Password::expose)
}

fn env_of<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn resolve_env(s: &str, env: &[(&str, &str)]) -> Result<ConnectParams, Error> {
    parse(s).resolve_with(&env_of(env), None)
}

fn resolve(s: &str) -> ConnectParams {
    resolve_env(s, &[("USER", "alice")]).unwrap_or_else(|e| panic!("{s:?} should resolve: {e}"))
}

fn resolve_err(s: &str) -> Error {
    match resolve_env(s, &[("USER", "alice")]) {
        Ok(p) => panic!("{s:?} should not resolve, got {p:?}"),
        Err(e) => e,
    }
}

// ---- PQconninfoParse ground truth: keyword/value strings ----

#[test]
fn row_plain_keywords() {
    let c = parse("host=localhost port=5432 dbname=mydb connect_timeout=10");
    assert_eq!(c.get_host(), Some("localhost"));
    assert_eq!(c.get_port(), Some("5432"));
    assert_eq!(c.get_dbname(), Some("mydb"));
    assert_eq!(c.get_connect_timeout(), Some("10"));
    assert_eq!(c.get_user(), None);
}

#[test]
fn row_spaces_around_equals() {
    let c = parse("user = foo   password = bar");
    assert_eq!(c.get_user(), Some("foo"));
    assert_eq!(pw(&c), Some("bar"));
}

#[test]
fn row_quoted_value_with_escapes() {
    assert_eq!(pw(&parse(r"password='a b\'c\\d'")), Some(r"a b'c\d"));
}

#[test]
fn row_unquoted_escaped_space() {
    assert_eq!(pw(&parse(r"password=a\ b")), Some("a b"));
}

#[test]
fn row_unquoted_escaped_quote() {
    assert_eq!(pw(&parse(r"password=ab\'c")), Some("ab'c"));
}

#[test]
fn row_unquoted_inner_quote_is_literal() {
    assert_eq!(pw(&parse("password=a'b")), Some("a'b"));
}

#[test]
fn row_trailing_backslash_dropped() {
    assert_eq!(pw(&parse(r"password=x\")), Some("x"));
}

#[test]
fn row_empty_quoted_value() {
    assert_eq!(
        parse("application_name=''").get_application_name(),
        Some("")
    );
}

#[test]
fn row_unterminated_quote() {
    assert!(err("password='x").contains("unterminated quoted string in connection info string"));
    assert!(err(r"host='abc\").contains("unterminated quoted string"));
}

#[test]
fn row_keyword_without_equals() {
    assert!(err("host").contains(r#"missing "=" after "host" in connection info string"#));
    assert!(err("host localhost").contains(r#"missing "=" after "host" in connection info string"#));
}

#[test]
fn row_no_sql_quote_doubling() {
    assert!(err("application_name='a''b'").contains(r#"missing "=" after "'b'""#));
    // After a password the token is not echoed: it is probably the rest of the password.
    let e = err("password='a''b'");
    assert!(e.contains(r#"missing "=""#), "{e}");
    assert!(!e.contains("'b'"), "{e}");
}

#[test]
fn row_unknown_keyword() {
    assert!(err("foo=bar").contains(r#"invalid connection option "foo""#));
}

/// A keyword right after the password is named like any other (with a hint, since a badly
/// quoted password could look the same); the password itself never shows.
#[test]
fn an_unknown_keyword_after_the_password_is_named() {
    for s in [
        "password=s3cret foo=bar",
        "password='s3cret' foo=bar",
        "user=u password=s3cret pool_max_conns=10",
    ] {
        let e = err(s);
        let name = if s.contains("foo") {
            "foo"
        } else {
            "pool_max_conns"
        };
        assert!(
            e.contains(&format!("invalid connection option \"{name}\"")),
            "{s}: {e}"
        );
        assert!(!e.contains("s3cret"), "{s}: {e}");
    }
    // Not shaped like a keyword: withheld, as it may be the rest of the password.
    let e = err("password=s3cret rest:of/it=x");
    assert!(!e.contains("rest") && !e.contains("s3cret"), "{e}");
}

#[test]
fn row_ssl_is_not_a_keyword() {
    assert!(err("ssl=true").contains(r#"invalid connection option "ssl""#));
}

#[test]
fn row_last_value_wins() {
    assert_eq!(parse("host=a host=b").get_host(), Some("b"));
}

#[test]
fn row_blank_after_equals_quirk() {
    let c = parse("host= port=1");
    assert_eq!(c.get_host(), Some("port=1"));
    assert_eq!(c.get_port(), None);
}

#[test]
fn row_quoted_values_need_no_separator() {
    let c = parse("dbname='a'user='b'");
    assert_eq!(c.get_dbname(), Some("a"));
    assert_eq!(c.get_user(), Some("b"));
}

#[test]
fn row_empty_and_blank_strings() {
    assert_eq!(parse(""), Config::new());
    assert_eq!(parse("   "), Config::new());
    assert_eq!(parse(" \t\r\n\u{0B}\u{0C}"), Config::new());
}

#[test]
fn row_bad_sslmode_is_a_resolve_error() {
    let c = parse("sslmode=bogus");
    assert_eq!(c.get_sslmode(), Some("bogus"));
    let e = resolve_err("sslmode=bogus");
    assert!(e.is_config());
    assert!(
        e.to_string().contains(r#"invalid sslmode value: "bogus""#),
        "{e}"
    );
}

#[test]
fn row_requiressl_overrides_sslmode() {
    assert_eq!(
        parse("sslmode=require requiressl=0").get_sslmode(),
        Some("prefer")
    );
    assert_eq!(parse("requiressl=1").get_sslmode(), Some("require"));
}

// ---- PQconninfoParse ground truth: URIs ----

#[test]
fn row_bare_uri() {
    assert_eq!(parse("postgresql://"), Config::new());
    assert_eq!(parse("postgres://"), Config::new());
}

#[test]
fn row_full_uri() {
    let c = parse("postgres://u:p%40ss@h:5433/d?application_name=x%20y&sslmode=require");
    assert_eq!(c.get_user(), Some("u"));
    assert_eq!(pw(&c), Some("p@ss"));
    assert_eq!(c.get_host(), Some("h"));
    assert_eq!(c.get_port(), Some("5433"));
    assert_eq!(c.get_dbname(), Some("d"));
    assert_eq!(c.get_application_name(), Some("x y"));
    assert_eq!(c.get_sslmode(), Some("require"));
}

#[test]
fn row_encoded_colons_in_credentials() {
    let c = parse("postgresql://us%3Aer:pa%3Ass@h/db");
    assert_eq!(c.get_user(), Some("us:er"));
    assert_eq!(pw(&c), Some("pa:ss"));
}

#[test]
fn row_password_with_colon() {
    assert_eq!(
        pw(&parse("postgresql://user:pass:word@h/db")),
        Some("pass:word")
    );
}

#[test]
fn row_ipv6_host() {
    let c = parse("postgresql://[::1]:5432/db");
    assert_eq!(c.get_host(), Some("::1"));
    assert_eq!(c.get_port(), Some("5432"));
}

#[test]
fn row_unterminated_ipv6() {
    let e = err("postgresql://[::1/db");
    assert!(
        e.contains(r#"end of string reached when looking for matching "]" in IPv6 host address in URI: "postgresql://[::1/db""#),
        "{e}"
    );
}

#[test]
fn row_encoded_socket_directory() {
    assert_eq!(
        parse("postgresql://%2Fvar%2Frun%2Fpg/db").get_host(),
        Some("/var/run/pg")
    );
}

#[test]
fn row_socket_directory_in_query() {
    let c = parse("postgresql:///db?host=/var/run/pg&port=5433");
    assert_eq!(c.get_host(), Some("/var/run/pg"));
    assert_eq!(c.get_port(), Some("5433"));
    assert_eq!(c.get_dbname(), Some("db"));
}

#[test]
fn row_several_hosts() {
    let c = parse("postgresql://h1:1,h2:2,h3/db");
    assert_eq!(c.get_host(), Some("h1,h2,h3"));
    assert_eq!(c.get_port(), Some("1,2,"));
}

#[test]
fn row_empty_last_host() {
    let c = parse("postgresql://h:5432,/db");
    assert_eq!(c.get_host(), Some("h,"));
    assert_eq!(c.get_port(), Some("5432,"));
}

#[test]
fn row_ssl_true() {
    assert_eq!(
        parse("postgresql://h/db?ssl=true").get_sslmode(),
        Some("require")
    );
}

#[test]
fn row_ssl_false() {
    assert!(err("postgresql://h/db?ssl=false").contains(r#"invalid URI query parameter: "ssl""#));
}

#[test]
fn row_unknown_query_parameter() {
    assert!(err("postgresql://h/db?foo=1").contains(r#"invalid URI query parameter: "foo""#));
}

#[test]
fn row_empty_query_name() {
    assert!(err("postgresql://h/db?=x").contains(r#"invalid URI query parameter: """#));
}

#[test]
fn row_query_without_equals() {
    let e = err("postgresql://h/db?sslmode");
    assert!(
        e.contains(r#"missing key/value separator "=" in URI query parameter: "sslmode""#),
        "{e}"
    );
}

#[test]
fn row_bad_percent_token() {
    assert!(err("postgresql://h/%zz").contains(r#"invalid percent-encoded token: "%zz""#));
    assert!(err("postgresql://h/ab%4").contains(r#"invalid percent-encoded token: "ab%4""#));
}

#[test]
fn row_percent_00_forbidden() {
    let e = err("postgresql://h/a%00b");
    assert!(
        e.contains(r#"forbidden value %00 in percent-encoded value: "a%00b""#),
        "{e}"
    );
}

#[test]
fn row_encoded_options() {
    let c = parse("postgresql://h/db?options=-c%20search_path%3Dabc");
    assert_eq!(c.get_options(), Some("-c search_path=abc"));
}

#[test]
fn row_bad_port_is_a_resolve_error() {
    assert_eq!(
        parse("postgresql://h:notaport/db").get_port(),
        Some("notaport")
    );
    let e = resolve_err("postgresql://h:notaport/db");
    assert!(
        e.to_string().contains(r#"invalid port number: "notaport""#),
        "{e}"
    );
}

#[test]
fn row_dbname_keeps_slashes() {
    assert_eq!(
        parse("postgresql://h/db/extra").get_dbname(),
        Some("db/extra")
    );
}

#[test]
fn row_dbname_encoded_slash() {
    assert_eq!(parse("postgresql://h/d%2Fb").get_dbname(), Some("d/b"));
}

#[test]
fn row_no_fragment_handling() {
    assert_eq!(
        parse("postgresql://h/db#frag").get_dbname(),
        Some("db#frag")
    );
}

#[test]
fn row_query_overrides_host() {
    assert_eq!(
        parse("postgresql://h/db?host=other").get_host(),
        Some("other")
    );
}

#[test]
fn row_query_overrides_user() {
    assert_eq!(parse("postgresql://u@h/db?user=v").get_user(), Some("v"));
}

#[test]
fn row_repeated_query_parameter() {
    let c = parse("postgresql://h/db?application_name=a&application_name=b");
    assert_eq!(c.get_application_name(), Some("b"));
}

#[test]
fn row_trailing_ampersand() {
    assert_eq!(
        parse("postgresql://h/db?connect_timeout=10&").get_connect_timeout(),
        Some("10")
    );
    assert!(err("postgresql://h/db?&")
        .contains(r#"missing key/value separator "=" in URI query parameter: """#));
    assert!(err("postgresql://h/db?port=1&&").contains("missing key/value separator"));
}

#[test]
fn row_empty_user() {
    let c = parse("postgresql://@h/db");
    assert_eq!(c.get_user(), None);
    assert_eq!(c.get_host(), Some("h"));
}

#[test]
fn row_upper_case_scheme_is_not_a_uri() {
    assert!(err("POSTGRESQL://h/db").contains(r#"missing "=" after "POSTGRESQL://h/db""#));
}

// ---- more grammar ----

#[test]
fn every_c_blank_separates() {
    let c = parse("host=a\tport=1\r\u{0B}user=u\u{0C}dbname=d\npassword=p");
    assert_eq!(
        (
            c.get_host(),
            c.get_port(),
            c.get_user(),
            c.get_dbname(),
            pw(&c)
        ),
        (Some("a"), Some("1"), Some("u"), Some("d"), Some("p"))
    );
    // A non-ASCII blank is part of the value, as for libpq in the C locale.
    assert_eq!(parse("host=a\u{A0}b").get_host(), Some("a\u{A0}b"));
}

#[test]
fn nul_is_refused() {
    assert!(err("host=a\0b").contains("NUL"));
    assert!(err("postgresql://h/a\0b").contains("NUL"));
}

#[test]
fn uri_extra_equals_and_bad_ipv6_suffix() {
    assert!(err("postgresql://h/db?options=-c%20a=b")
        .contains(r#"extra key/value separator "=" in URI query parameter: "options""#));
    assert!(err("postgresql://[]/db").contains("IPv6 host address may not be empty"));
    let e = err("postgresql://[::1]x/db");
    assert!(
        e.contains(r#"unexpected character "x" at position 19 in URI"#),
        "{e}"
    );
}

#[test]
fn uri_quirks_kept_from_libpq() {
    // The user part is whatever precedes the first `@` that comes before any `/`.
    let c = parse("postgresql://h?user=a@b/db");
    assert_eq!(c.get_user(), Some("h?user=a"));
    assert_eq!(c.get_host(), Some("b"));
    // Hosts are joined before decoding, so an encoded comma separates hosts.
    assert_eq!(parse("postgresql://a%2Cb/db").get_host(), Some("a,b"));
    // An empty dbname is not stored, so PGDATABASE can still apply.
    assert_eq!(parse("postgresql://h/?port=1").get_dbname(), None);
    assert!(err("postgresql://h/%FF").contains("not valid UTF-8"));
}

#[test]
fn tls_keywords_are_stored_and_sslpassword_and_sslcompression_dropped() {
    let c = parse("host=h sslcert=a.crt sslkey=a.key sslrootcert=r sslcrl=c sslpassword=x sslsni=1 sslcompression=0");
    assert_eq!(
        c,
        parse("host=h sslcert=a.crt sslkey=a.key sslrootcert=r sslcrl=c sslsni=1")
    );
    assert_eq!(c.get("sslrootcert"), Some("r"));
    assert!(!format!("{c:?} {c}").contains("sslpassword"));
    assert_eq!(
        parse("postgresql://h?sslrootcert=r"),
        parse("host=h sslrootcert=r")
    );
}

#[test]
fn libpq_features_we_lack_are_refused_by_name() {
    for s in [
        "service=prod",
        "gssencmode=require",
        "postgresql://h?requirepeer=postgres",
    ] {
        let e = s.parse::<Config>().unwrap_err();
        assert!(e.is_unsupported(), "{s}: {e}");
        let name = s
            .trim_start_matches("postgresql://h?")
            .split('=')
            .next()
            .unwrap();
        assert!(e.to_string().contains(&format!("\"{name}\"")), "{e}");
    }
}

#[test]
fn every_supported_keyword_parses_and_reads_back() {
    let names = [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "passfile",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "sslmode",
        "require_auth",
        "channel_binding",
        "target_session_attrs",
        "tcp_user_timeout",
        "load_balance_hosts",
    ];
    for name in names {
        let c = parse(&format!("{name}='v {name}'"));
        assert_eq!(c.get(name), Some(format!("v {name}").as_str()));
    }
    assert_eq!(
        parse("password=p").get("password"),
        None,
        "get() never returns the password"
    );
}

// ---- round trip, redaction ----

const TRICKY: &[&str] = &[
    "",
    "host=a,b,,c port=1,,3 user='' password='' dbname=' '",
    r"password='a b\'c\\d' options='-c search_path=\'x y\''",
    r"password=\\\' application_name=é€😀 dbname='tab	inside'",
    "host=/var/run/pg hostaddr=::1,10.0.0.1 keepalives=0 keepalives_idle=7",
    "host= port=1 dbname='a'user='b'",
    "postgres://u%20s:p%27w%5C@[::1]:5,h2/d%20b?application_name=%27%22&sslmode=disable",
    "postgresql://h/db/#x?options=%3D%3D",
    "sslmode=require requiressl=1 client_encoding=UTF8 require_auth=!md5",
    "application_name='=' fallback_application_name=\\= target_session_attrs=any channel_binding=prefer",
    "target_session_attrs=prefer-standby load_balance_hosts=random tcp_user_timeout=10000",
];

fn assert_round_trip(s: &str) {
    let Ok(original) = s.parse::<Config>() else {
        return;
    };
    let printed = original.to_conninfo_string();
    let again: Config = printed
        .parse()
        .unwrap_or_else(|e| panic!("{s:?} printed as {printed:?}, which fails: {e}"));
    assert_eq!(again, original, "{s:?} printed as {printed:?}");
    // Resolving arbitrary values may fail, but must not panic.
    let _ = original.resolve_with(&|_| None, None);
    // Display is the same string without the password, and parses to the same minus password.
    let shown: Config = original.to_string().parse().unwrap();
    assert_eq!(shown.get_password(), None);
    assert_eq!(shown.to_conninfo_string(), original.to_string());
}

#[test]
fn tricky_strings_round_trip() {
    for s in TRICKY {
        assert_round_trip(s);
        assert!(s.parse::<Config>().is_ok(), "{s:?} should parse");
    }
}

#[test]
fn pseudo_random_strings_round_trip() {
    // A fixed xorshift sequence over the characters that matter to the grammar: a cheap,
    // deterministic stand-in for the fuzz target.
    let alphabet: Vec<char> = "= '\\\t\r\n\u{0B}\u{0C}\0ab,%:/?@&[]#é😀".chars().collect();
    let words = [
        "host",
        "hostaddr",
        "port",
        "password",
        "user",
        "dbname",
        "options",
        "postgresql://",
        "postgres://",
        "=",
        "'",
        "\\",
        "%2F",
        "%00",
        "%C3%A9",
        "%FF",
        "?ssl=true",
        "&host=",
        "requiressl",
        "sslrootcert",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut parsed = 0;
    for _ in 0..5000 {
        let len = next() % 24;
        let mut s = String::new();
        for _ in 0..len {
            let r = next();
            if r % 3 == 0 {
                s.push_str(words[(r / 3 % words.len() as u64) as usize]);
            } else {
                s.push(alphabet[(r / 3 % alphabet.len() as u64) as usize]);
            }
        }
        if s.parse::<Config>().is_ok() {
            parsed += 1;
        }
        assert_round_trip(&s);
    }
    assert!(
        parsed > 100,
        "the generator should produce parseable strings, got {parsed}"
    );
}

#[test]
fn debug_and_display_hide_the_password() {
    for s in [
        "host=h user=u password=hunter2-secret",
        "postgres://u:hunter2-secret@h/db",
        "postgres://h/db?password=hunter2-secret",
    ] {
        let c = parse(s);
        assert_eq!(pw(&c), Some("hunter2-secret"));
        let shown = format!("{c} {c:?} {c:#?}");
        assert!(!shown.contains("hunter2"), "{s}: {shown}");
        assert!(
            format!("{c:?}").contains("password"),
            "Debug says a password is set"
        );
        assert!(c.to_conninfo_string().contains("password=hunter2-secret"));
    }
    let params = resolve("host=h password=hunter2-secret");
    assert!(!format!("{params:?}").contains("hunter2"));
}

#[test]
fn errors_do_not_echo_the_password() {
    for s in [
        "password=hunter2 secret",
        "password=hunter2 sec/ret=1",
        "postgres://u:hunter2%zz@h/db",
        "postgres://u:hunter2%00@h/db",
        "postgres://u:hunter2secret@[::1/db",
        "postgres://u:hunter2secret@[::1]x/db",
        "postgres://h/db?password=hunter2%zz",
    ] {
        let e = s.parse::<Config>().unwrap_err().to_string();
        assert!(!e.contains("hunter2") && !e.contains("secret"), "{s}: {e}");
    }
    let mut c = Config::new();
    c.password("hunter2\0");
    let e = c.resolve_with(&env_of(&[]), None).unwrap_err().to_string();
    assert!(
        e.contains(r#""password" contains a NUL"#) && !e.contains("hunter2"),
        "{e}"
    );
}

// ---- setters ----

#[test]
fn setters_build_what_the_string_says() {
    let mut built = Config::new();
    built
        .host("db1,db2")
        .port(5433)
        .user("app")
        .password("pw")
        .dbname("shop")
        .application_name("billing")
        .options("-c geqo=off")
        .connect_timeout(Duration::from_secs(10))
        .require_auth("scram-sha-256")
        .sslmode(SslMode::Disable);
    let parsed = parse(
        "host=db1,db2 port=5433 user=app password=pw dbname=shop application_name=billing \
         options='-c geqo=off' connect_timeout=10 require_auth=scram-sha-256 sslmode=disable",
    );
    assert_eq!(built, parsed);
    assert_eq!(built.get_sslmode(), Some("disable"));
    assert_eq!(built.get_require_auth(), Some("scram-sha-256"));
}

#[test]
fn connect_timeout_setter_rounds_up() {
    let mut c = Config::new();
    assert_eq!(
        c.connect_timeout(Duration::ZERO).get_connect_timeout(),
        Some("0")
    );
    assert_eq!(
        c.connect_timeout(Duration::from_millis(1))
            .get_connect_timeout(),
        Some("1")
    );
    assert_eq!(
        c.connect_timeout(Duration::MAX).get_connect_timeout(),
        Some("2147483647")
    );
    c.connect_timeout(Duration::MAX);
    assert_eq!(
        c.resolve_with(&env_of(&[]), None).unwrap().connect_timeout,
        Some(Duration::from_secs(2_147_483_647))
    );
}

#[test]
fn set_uses_the_same_rules_as_the_parser() {
    let mut c = Config::new();
    c.set("requiressl", "1")
        .unwrap()
        .set("sslrootcert", "x")
        .unwrap();
    assert_eq!(c, parse("sslmode=require sslrootcert=x"));
    assert!(c
        .set("bogus", "1")
        .unwrap_err()
        .to_string()
        .contains(r#"invalid connection option "bogus""#));
}

// ---- resolve: defaults, environment, precedence ----

#[test]
fn defaults() {
    let p = resolve("");
    let hosts: Vec<_> = p.targets.iter().map(|t| (t.host.clone(), t.port)).collect();
    assert_eq!(
        hosts,
        [
            (Host::Unix(PathBuf::from("/var/run/postgresql")), 5432),
            (Host::Unix(PathBuf::from("/tmp")), 5432)
        ]
    );
    assert_eq!((p.user.as_str(), p.dbname.as_str()), ("alice", "alice"));
    assert_eq!(p.sslmode, SslMode::Prefer);
    assert_eq!(p.connect_timeout, None);
    assert_eq!(p.application_name, None);
    assert_eq!(p.options, None);
    assert!(p.keepalives.enabled);
    assert_eq!(
        (p.keepalives.idle, p.keepalives.interval, p.keepalives.count),
        (None, None, None)
    );
    assert!(p
        .targets
        .iter()
        .all(|t| t.password.is_none() && t.hostaddr.is_none()));
}

#[test]
fn os_user_fallbacks() {
    let p = |env: &[(&str, &str)]| resolve_env("", env).unwrap().user;
    assert_eq!(p(&[("LOGNAME", "bob")]), "bob");
    assert_eq!(p(&[("USER", ""), ("LOGNAME", "bob")]), "bob");
    assert_eq!(p(&[]), "postgres");
    assert_eq!(resolve_env("", &[]).unwrap().dbname, "postgres");
}

#[test]
fn environment_fills_what_the_string_leaves_out() {
    let env = [
        ("PGHOST", "envhost"),
        ("PGPORT", "6000"),
        ("PGUSER", "envuser"),
        ("PGDATABASE", "envdb"),
        ("PGPASSWORD", "envpw"),
        ("PGAPPNAME", "envapp"),
        ("PGOPTIONS", "-c x=y"),
        ("PGCONNECT_TIMEOUT", "7"),
        ("PGSSLMODE", "disable"),
        ("PGCLIENTENCODING", "utf-8"),
        ("PGCHANNELBINDING", "disable"),
        ("PGTARGETSESSIONATTRS", "any"),
    ];
    let p = resolve_env("", &env).unwrap();
    assert_eq!(p.targets.len(), 1);
    assert_eq!(p.targets[0].host, Host::Tcp("envhost".into()));
    assert_eq!(p.targets[0].port, 6000);
    assert_eq!(
        p.targets[0].password.as_ref().map(Password::expose),
        Some("envpw")
    );
    assert_eq!((p.user.as_str(), p.dbname.as_str()), ("envuser", "envdb"));
    assert_eq!(p.application_name.as_deref(), Some("envapp"));
    assert_eq!(p.options.as_deref(), Some("-c x=y"));
    assert_eq!(p.connect_timeout, Some(Duration::from_secs(7)));
    assert_eq!(p.sslmode, SslMode::Disable);
    assert_eq!(
        resolve_env("", &[("PGHOSTADDR", "10.1.2.3")])
            .unwrap()
            .targets[0]
            .hostaddr,
        Some("10.1.2.3".parse().unwrap())
    );
}

#[test]
fn the_string_beats_the_environment_even_when_empty() {
    let env = [
        ("PGHOST", "envhost"),
        ("PGUSER", "envuser"),
        ("PGPASSWORD", "envpw"),
        ("PGAPPNAME", "envapp"),
    ];
    let p = resolve_env("host=h user=u password=pw application_name=app", &env).unwrap();
    assert_eq!(p.targets[0].host, Host::Tcp("h".into()));
    assert_eq!(p.user, "u");
    assert_eq!(
        p.targets[0].password.as_ref().map(Password::expose),
        Some("pw")
    );
    assert_eq!(p.application_name.as_deref(), Some("app"));
    // libpq: a value given empty blocks the variable and then means "the default".
    let p = resolve_env(
        "host='' user='' application_name=''",
        &[
            ("USER", "alice"),
            ("PGHOST", "envhost"),
            ("PGUSER", "envuser"),
        ],
    )
    .unwrap();
    assert!(matches!(p.targets[0].host, Host::Unix(_)));
    assert_eq!(p.user, "alice");
    assert_eq!(p.application_name, None);
    // PGSSLMODE applies when the string gives no sslmode, and only then.
    let env = [("PGSSLMODE", "require")];
    assert_eq!(
        resolve_env("sslmode=disable", &env).unwrap().sslmode,
        SslMode::Disable
    );
    assert_eq!(resolve_env("", &env).unwrap().sslmode, SslMode::Require);
}

#[test]
fn fallback_application_name() {
    assert_eq!(
        resolve("fallback_application_name=fb")
            .application_name
            .as_deref(),
        Some("fb")
    );
    assert_eq!(
        resolve("application_name=a fallback_application_name=fb")
            .application_name
            .as_deref(),
        Some("a")
    );
    let p = resolve_env("fallback_application_name=fb", &[("PGAPPNAME", "env")]).unwrap();
    assert_eq!(p.application_name.as_deref(), Some("env"));
}

// ---- resolve: hosts and ports ----

fn hosts(p: &ConnectParams) -> Vec<(String, u16)> {
    p.targets
        .iter()
        .map(|t| match &t.host {
            Host::Tcp(h) => (h.clone(), t.port),
            Host::Unix(d) => (d.display().to_string(), t.port),
        })
        .collect()
}

fn hp(list: &[(&str, u16)]) -> Vec<(String, u16)> {
    list.iter().map(|(h, p)| ((*h).to_owned(), *p)).collect()
}

#[test]
fn one_port_for_all_hosts_or_one_each() {
    assert_eq!(
        hosts(&resolve("host=a,b,c port=7")),
        hp(&[("a", 7), ("b", 7), ("c", 7)])
    );
    assert_eq!(
        hosts(&resolve("host=a,b,c port=1,2,3")),
        hp(&[("a", 1), ("b", 2), ("c", 3)])
    );
    assert_eq!(hosts(&resolve("host=a,b")), hp(&[("a", 5432), ("b", 5432)]));
    assert_eq!(
        hosts(&resolve("postgresql://h1:1,h2:2,h3/db")),
        hp(&[("h1", 1), ("h2", 2), ("h3", 5432)])
    );
}

#[test]
fn empty_list_items_take_the_default() {
    assert_eq!(
        hosts(&resolve("host=a,,/sock port=1,2,")),
        hp(&[
            ("a", 1),
            ("/var/run/postgresql", 2),
            ("/tmp", 2),
            ("/sock", 5432)
        ])
    );
}

#[test]
fn list_length_mismatches_are_errors() {
    let e = resolve_err("host=a,b,c port=1,2");
    assert!(
        e.is_config()
            && e.to_string()
                .contains("could not match 2 port numbers to 3 hosts"),
        "{e}"
    );
    let e = resolve_err("host=a,b hostaddr=10.0.0.1");
    assert!(
        e.to_string()
            .contains("could not match 2 host names to 1 hostaddr values"),
        "{e}"
    );
    let e = resolve_err("hostaddr=10.0.0.1,10.0.0.2 port=1,2,3");
    assert!(
        e.to_string()
            .contains("could not match 3 port numbers to 2 hosts"),
        "{e}"
    );
}

#[test]
fn hostaddr_must_be_an_ip_address() {
    let p = resolve("host=db,other hostaddr=10.0.0.1,::1");
    assert_eq!(p.targets[0].hostaddr, Some("10.0.0.1".parse().unwrap()));
    assert_eq!(p.targets[1].hostaddr, Some("::1".parse().unwrap()));
    assert_eq!(p.targets[0].host, Host::Tcp("db".into()));
    let p = resolve("hostaddr=10.0.0.9");
    assert_eq!(p.targets[0].host, Host::Tcp("10.0.0.9".into()));
    let e = resolve_err("hostaddr=db.example.com");
    assert!(
        e.is_config() && e.to_string().contains("\"db.example.com\""),
        "{e}"
    );
}

#[test]
fn ports_are_checked() {
    for bad in ["0", "65536", "-1", "x", "5432x"] {
        let e = resolve_err(&format!("port={bad}"));
        assert!(
            e.to_string()
                .contains(&format!("invalid port number: \"{bad}\"")),
            "{e}"
        );
    }
    assert_eq!(resolve("port=65535").targets[0].port, 65535);
    assert_eq!(resolve("port=' 6000 '").targets[0].port, 6000);
}

#[test]
fn socket_directories() {
    assert_eq!(
        resolve("host=/run/pg").targets[0].host,
        Host::Unix(PathBuf::from("/run/pg"))
    );
    assert!(resolve_err("host=@abstract").is_unsupported());
}

// ---- resolve: values ----

#[test]
fn connect_timeout_semantics() {
    let t = |s: &str| resolve(s).connect_timeout;
    assert_eq!(t("connect_timeout=10"), Some(Duration::from_secs(10)));
    assert_eq!(t("connect_timeout=1"), Some(Duration::from_secs(2)));
    assert_eq!(t("connect_timeout=0"), None);
    assert_eq!(t("connect_timeout=-5"), None);
    for bad in ["abc", "", "1.5", "99999999999"] {
        let e = resolve_err(&format!("connect_timeout='{bad}'"));
        assert!(
            e.to_string().contains(&format!(
                r#"invalid integer value "{bad}" for connection option "connect_timeout""#
            )),
            "{e}"
        );
    }
}

#[test]
fn keepalive_settings() {
    let k = resolve("keepalives=0 keepalives_idle=30 keepalives_interval=5 keepalives_count=3")
        .keepalives;
    assert!(!k.enabled);
    assert_eq!(
        (k.idle, k.interval, k.count),
        (
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(5)),
            Some(3)
        )
    );
    let k = resolve("keepalives=1 keepalives_idle=0 keepalives_count=-1").keepalives;
    assert!(k.enabled);
    assert_eq!((k.idle, k.count), (None, None));
    assert!(resolve_err("keepalives_idle=soon")
        .to_string()
        .contains("keepalives_idle"));
}

#[test]
fn sslmodes_resolve() {
    for (mode, want) in [
        ("disable", SslMode::Disable),
        ("allow", SslMode::Allow),
        ("prefer", SslMode::Prefer),
        ("require", SslMode::Require),
        ("verify-ca", SslMode::VerifyCa),
        ("verify-full", SslMode::VerifyFull),
    ] {
        assert_eq!(resolve(&format!("sslmode={mode}")).sslmode, want);
    }
    assert_eq!(
        resolve("postgresql://h/db?ssl=true").sslmode,
        SslMode::Require
    );
    assert_eq!(resolve("host=h").sslmode, SslMode::Prefer);
    assert!(resolve_err("sslmode=''")
        .to_string()
        .contains(r#"invalid sslmode value: """#));
}

#[test]
fn channel_binding_values() {
    resolve("channel_binding=disable");
    resolve("channel_binding=prefer");
    assert_eq!(
        resolve("channel_binding=require").channel_binding,
        ChannelBindingMode::Require
    );
    assert_eq!(
        resolve("host=h").channel_binding,
        ChannelBindingMode::Prefer
    );
    assert_eq!(
        resolve_env("", &[("PGCHANNELBINDING", "disable")])
            .unwrap()
            .channel_binding,
        ChannelBindingMode::Disable
    );
    assert!(resolve_err("channel_binding=maybe")
        .to_string()
        .contains(r#"invalid channel_binding value: "maybe""#));
}

#[test]
fn target_session_attrs_values() {
    let t = |s: &str| resolve(s).target_session_attrs;
    assert_eq!(t(""), TargetSessionAttrs::Any);
    assert_eq!(t("target_session_attrs=any"), TargetSessionAttrs::Any);
    assert_eq!(
        t("target_session_attrs=read-write"),
        TargetSessionAttrs::ReadWrite
    );
    assert_eq!(
        t("target_session_attrs=read-only"),
        TargetSessionAttrs::ReadOnly
    );
    assert_eq!(
        t("target_session_attrs=primary"),
        TargetSessionAttrs::Primary
    );
    assert_eq!(
        t("target_session_attrs=standby"),
        TargetSessionAttrs::Standby
    );
    assert_eq!(
        t("postgresql://h?target_session_attrs=prefer-standby"),
        TargetSessionAttrs::PreferStandby
    );
    let from_env = resolve_env("", &[("PGTARGETSESSIONATTRS", "standby")]).unwrap();
    assert_eq!(from_env.target_session_attrs, TargetSessionAttrs::Standby);
    let given_wins = resolve_env(
        "target_session_attrs=primary",
        &[("PGTARGETSESSIONATTRS", "standby")],
    );
    assert_eq!(
        given_wins.unwrap().target_session_attrs,
        TargetSessionAttrs::Primary
    );
    // libpq's spellings only: the pre-14 `master` and a capitalised value are errors.
    for bad in ["master", "Read-Write", ""] {
        let e = resolve_err(&format!("target_session_attrs='{bad}'"));
        assert!(
            e.is_config()
                && e.to_string()
                    .contains(&format!("invalid target_session_attrs value: \"{bad}\"")),
            "{e}"
        );
    }
}

#[test]
fn load_balance_hosts_values() {
    assert_eq!(resolve("").load_balance_hosts, LoadBalanceHosts::Disable);
    assert_eq!(
        resolve("load_balance_hosts=random").load_balance_hosts,
        LoadBalanceHosts::Random
    );
    let from_env = resolve_env("", &[("PGLOADBALANCEHOSTS", "random")]).unwrap();
    assert_eq!(from_env.load_balance_hosts, LoadBalanceHosts::Random);
    let e = resolve_err("load_balance_hosts=yes");
    assert!(
        e.is_config()
            && e.to_string()
                .contains(r#"invalid load_balance_hosts value: "yes""#),
        "{e}"
    );
}

/// libpq's `tcp_user_timeout`: milliseconds; zero or less keeps the system default.
#[test]
fn tcp_user_timeout_is_milliseconds() {
    let ut = |s: &str| resolve(s).keepalives.user_timeout;
    assert_eq!(ut(""), None);
    assert_eq!(
        ut("tcp_user_timeout=2500"),
        Some(Duration::from_millis(2500))
    );
    assert_eq!(ut("tcp_user_timeout=0"), None);
    assert_eq!(ut("tcp_user_timeout=-5"), None);
    // Independent of keepalives=0, as in libpq.
    assert_eq!(
        ut("keepalives=0 tcp_user_timeout=10"),
        Some(Duration::from_millis(10))
    );
    let e = resolve_err("tcp_user_timeout=10s");
    assert!(
        e.to_string()
            .contains(r#"invalid integer value "10s" for connection option "tcp_user_timeout""#),
        "{e}"
    );
    let mut c = Config::new();
    c.tcp_user_timeout(Duration::from_micros(1500));
    assert_eq!(
        c.get("tcp_user_timeout"),
        Some("2"),
        "rounded up to whole ms"
    );
}

#[test]
fn one_config_gives_a_write_and_a_read_variant() {
    let cluster = parse("host=pg1,pg2,pg3 user=app dbname=shop");
    let writes = cluster.with_target_session_attrs(TargetSessionAttrs::ReadWrite);
    let reads = cluster
        .with_target_session_attrs(TargetSessionAttrs::PreferStandby)
        .with_load_balance_hosts(LoadBalanceHosts::Random);
    assert_eq!(
        cluster.get_target_session_attrs(),
        None,
        "the original is untouched"
    );
    assert_eq!(writes.get_target_session_attrs(), Some("read-write"));
    assert_eq!(reads.get_target_session_attrs(), Some("prefer-standby"));
    assert_eq!(reads.get_load_balance_hosts(), Some("random"));
    assert_eq!(
        writes,
        parse("host=pg1,pg2,pg3 user=app dbname=shop target_session_attrs=read-write")
    );
    let mut built = Config::new();
    built
        .target_session_attrs(TargetSessionAttrs::Standby)
        .load_balance_hosts(LoadBalanceHosts::Disable);
    assert_eq!(
        built,
        parse("target_session_attrs=standby load_balance_hosts=disable")
    );
}

/// Settings that no retry can fix are found without connecting: `validate` applies every check
/// connecting would, and unsupported options are refused by parsing already.
#[test]
fn bad_settings_are_found_without_connecting() {
    for (s, says) in [
        ("port=notaport", r#"invalid port number: "notaport""#),
        ("port=99999", r#"invalid port number: "99999""#),
        (
            "host=a,b port=1,2,3",
            "could not match 3 port numbers to 2 hosts",
        ),
        ("sslmode=bogus", r#"invalid sslmode value: "bogus""#),
        ("hostaddr=db.example.com", "could not parse network address"),
        (
            "connect_timeout=soon",
            r#"for connection option "connect_timeout""#,
        ),
        (
            "target_session_attrs=writable",
            "invalid target_session_attrs value",
        ),
        ("require_auth=kerberos", "kerberos"),
    ] {
        let e = parse(s).validate().unwrap_err();
        assert!(
            e.is_config() && e.is_permanent_connect_error(),
            "{s}: {e:?}"
        );
        assert!(e.to_string().contains(says), "{s}: {e}");
    }
    let e = parse("sslrootcert=system sslmode=require")
        .validate()
        .unwrap_err();
    assert!(e.is_config() && e.is_permanent_connect_error(), "{e}");
    for s in [
        "service=prod",
        "gssencmode=require",
        "postgresql://h?replication=1",
    ] {
        let e = s.parse::<Config>().unwrap_err();
        assert!(
            e.is_unsupported() && e.is_permanent_connect_error(),
            "{s}: {e}"
        );
    }
    parse("host=db1,db2 port=5432,5433 target_session_attrs=read-write tcp_user_timeout=9000")
        .validate()
        .unwrap();
}

#[test]
fn client_encoding_must_be_utf8() {
    for ok in ["UTF8", "utf8", "UTF-8", "unicode", "auto", ""] {
        resolve(&format!("client_encoding='{ok}'"));
    }
    let e = resolve_err("client_encoding=LATIN1");
    assert!(
        e.is_unsupported() && e.to_string().contains("LATIN1"),
        "{e}"
    );
    assert!(resolve_env("", &[("PGCLIENTENCODING", "SQL_ASCII")])
        .unwrap_err()
        .is_unsupported());
}

#[test]
fn require_auth_is_parsed_at_resolve() {
    // The grammar itself is tested with `wire::RequireAuth`; here only that it is read.
    resolve("require_auth=scram-sha-256");
    resolve_env("", &[("PGREQUIREAUTH", "md5")]).unwrap();
}

// ---- .pgpass ----

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str, mode: u32) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("wirepool-test-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        #[cfg(not(unix))]
        let _ = mode;
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const PGPASS: &str = "\
# comment:*:*:*:nope
db1:5432:shop:app:first
db1:5432:shop:app:second
*:6000:*:app:wild-port
db\\:colon:*:*:*:escaped-host
localhost:*:*:*:local\\:pw\\\\x
10.0.0.5:*:*:*:by-hostaddr
/run/custom:*:*:*:by-socket
db2:*:*:*:crlf\r
db3:*:*:*:
";

fn pgpass_password(conninfo: &str, file: &Path, env: &[(&str, &str)]) -> Vec<Option<String>> {
    let mut c = parse(conninfo);
    c.set("passfile", file.to_str().unwrap()).unwrap();
    c.resolve_with(&env_of(env), None)
        .unwrap()
        .targets
        .iter()
        .map(|t| t.password.as_ref().map(|p| p.expose().to_owned()))
        .collect()
}

fn one(v: &[Option<String>]) -> Option<&str> {
    assert!(!v.is_empty());
    v[0].as_deref()
}

#[test]
fn pgpass_matching() {
    let f = TempFile::new("pgpass-match", PGPASS, 0o600);
    let env = [("USER", "app")];
    let get = |s: &str| pgpass_password(s, &f.0, &env);
    assert_eq!(
        one(&get("host=db1 dbname=shop")),
        Some("first"),
        "first match wins"
    );
    assert_eq!(one(&get("host=db1 dbname=other")), None);
    assert_eq!(one(&get("host=anything port=6000")), Some("wild-port"));
    assert_eq!(one(&get("host=db:colon")), Some("escaped-host"));
    assert_eq!(
        get(""),
        [
            Some("local:pw\\x".to_owned()),
            Some("local:pw\\x".to_owned())
        ],
        "default sockets are localhost"
    );
    assert_eq!(one(&get("host=/var/run/postgresql")), Some("local:pw\\x"));
    assert_eq!(one(&get("host=/run/custom")), Some("by-socket"));
    assert_eq!(one(&get("hostaddr=10.0.0.5")), Some("by-hostaddr"));
    assert_eq!(
        one(&get("host=elsewhere hostaddr=10.0.0.5")),
        None,
        "host is the key when given"
    );
    assert_eq!(one(&get("host=db2")), Some("crlf"));
    assert_eq!(
        one(&get("host=db3")),
        None,
        "an empty password is no password"
    );
    assert_eq!(
        get("host=db1,nowhere,db2 dbname=shop"),
        [Some("first".to_owned()), None, Some("crlf".to_owned())]
    );
}

#[test]
fn pgpass_is_the_last_resort() {
    let f = TempFile::new("pgpass-last", "*:*:*:*:from-file\n", 0o600);
    assert_eq!(
        one(&pgpass_password("password=given", &f.0, &[])),
        Some("given")
    );
    assert_eq!(
        one(&pgpass_password("", &f.0, &[("PGPASSWORD", "env")])),
        Some("env")
    );
    assert_eq!(
        one(&pgpass_password("password=''", &f.0, &[])),
        Some("from-file")
    );
}

#[test]
fn pgpass_location_passfile_env_home() {
    let dir = std::env::temp_dir().join(format!("wirepool-test-{}-home", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let home_file = TempFile::new("home/.pgpass", "*:*:*:*:from-home\n", 0o600);
    let env_file = TempFile::new("pgpass-env", "*:*:*:*:from-env\n", 0o600);
    let pw = |s: &str, env: &[(&str, &str)]| {
        parse(s)
            .resolve_with(&env_of(env), Some(&dir))
            .unwrap()
            .targets[0]
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
    };
    let env_path = env_file.0.to_str().unwrap();
    assert_eq!(pw("", &[]).as_deref(), Some("from-home"));
    assert_eq!(
        pw("", &[("PGPASSFILE", env_path)]).as_deref(),
        Some("from-env")
    );
    let given = format!("passfile='{env_path}'");
    assert_eq!(
        pw(&given, &[("PGPASSFILE", "/nonexistent")]).as_deref(),
        Some("from-env")
    );
    assert_eq!(
        pw("passfile=/nonexistent/pgpass", &[]),
        None,
        "a missing file is fine"
    );
    drop(home_file);
    let _ = std::fs::remove_dir(&dir);
}

/// Collects what a `tracing` subscriber writes, to check the warnings' wording.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
#[test]
fn pgpass_readable_by_others_is_ignored() {
    use tracing_subscriber::util::SubscriberInitExt;

    let f = TempFile::new("pgpass-open", "*:*:*:*:leaky\n", 0o644);
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    {
        let _guard = subscriber.set_default();
        assert_eq!(one(&pgpass_password("host=h", &f.0, &[])), None);
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("WARN") && logs.contains("group or world access"),
        "{logs}"
    );
    assert!(
        logs.contains(f.0.to_str().unwrap()),
        "the warning names the file: {logs}"
    );
    assert!(!logs.contains("leaky"), "{logs}");
    let g = TempFile::new("pgpass-group", "*:*:*:*:leaky\n", 0o640);
    assert_eq!(one(&pgpass_password("host=h", &g.0, &[])), None);
    let ok = TempFile::new("pgpass-private", "*:*:*:*:private\n", 0o400);
    assert_eq!(one(&pgpass_password("host=h", &ok.0, &[])), Some("private"));
}

#[test]
fn tls_files_default_to_the_home_directory_and_the_environment() {
    let home = Path::new("/home/alice");
    let p = parse("host=h")
        .resolve_with(&env_of(&[]), Some(home))
        .unwrap();
    assert_eq!(
        p.tls.root,
        RootCert::File(PathBuf::from("/home/alice/.postgresql/root.crt"))
    );
    assert_eq!(
        p.tls.cert.as_deref(),
        Some(Path::new("/home/alice/.postgresql/postgresql.crt"))
    );
    assert_eq!(
        p.tls.crl.as_deref(),
        Some(Path::new("/home/alice/.postgresql/root.crl"))
    );
    assert!(p.tls.sni && !p.tls.direct);
    let p = parse("host=h")
        .resolve_with(
            &env_of(&[("PGSSLROOTCERT", "/etc/ca.pem"), ("PGSSLSNI", "0")]),
            Some(home),
        )
        .unwrap();
    assert_eq!(p.tls.root, RootCert::File(PathBuf::from("/etc/ca.pem")));
    assert!(!p.tls.sni);
    assert_eq!(
        parse("host=h")
            .resolve_with(&env_of(&[]), None)
            .unwrap()
            .tls
            .root,
        RootCert::Unset
    );
}

#[test]
fn sslrootcert_system_means_verify_full_and_nothing_weaker() {
    assert_eq!(resolve("sslrootcert=system").sslmode, SslMode::VerifyFull);
    assert_eq!(resolve("sslrootcert=system").tls.root, RootCert::System);
    resolve("sslrootcert=system sslmode=verify-full");
    for mode in ["disable", "allow", "prefer", "require", "verify-ca"] {
        let e = resolve_err(&format!("sslrootcert=system sslmode={mode}"));
        assert!(e.is_config(), "{e}");
        assert!(
            e.to_string().contains(&format!(
                "weak sslmode \"{mode}\" may not be used with sslrootcert=system"
            )),
            "{e}"
        );
    }
    // PGSSLMODE counts as given, as in libpq.
    assert!(resolve_env("sslrootcert=system", &[("PGSSLMODE", "require")]).is_err());
}

#[test]
fn tls_option_values_are_checked() {
    assert!(resolve_err("sslsni=yes").to_string().contains("sslsni"));
    assert!(resolve_err("sslnegotiation=fast")
        .to_string()
        .contains("sslnegotiation"));
    assert!(resolve_err("ssl_min_protocol_version=TLSv2").is_config());
    assert!(
        resolve_err("ssl_min_protocol_version=TLSv1.3 ssl_max_protocol_version=TLSv1.2")
            .to_string()
            .contains("invalid SSL protocol version range")
    );
    assert_eq!(
        resolve("ssl_max_protocol_version=tlsv1.2").tls.max_version,
        Some(TlsVersion::V1_2)
    );
    assert!(resolve("sslnegotiation=direct sslmode=require").tls.direct);
    assert!(resolve_err("sslnegotiation=direct")
        .to_string()
        .contains("weak sslmode \"prefer\" may not be used with sslnegotiation=direct"));
}
