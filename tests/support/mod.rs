//! Shared support for integration tests: a throwaway PostgreSQL cluster ([`cluster`]), the
//! server's view of a pool's sessions ([`activity`]), a primary with a streaming standby
//! ([`standby`]), a scripted fake server for fault tests ([`fake_server`]), an in-memory
//! `Manage` for the pool's semantics under paused time ([`pool_mock`]), a TCP proxy that stalls
//! and kills connections ([`proxy`]), a real PgBouncer in front of a cluster ([`pgbouncer`]), and
//! the chaos harness, reports and scenarios ([`chaos`], [`report`], [`scenarios`]), and the
//! logs a test captures ([`logs`]).
//!
//! Each test binary compiles this module separately and uses only part of it, hence
//! `allow(dead_code)`. `cluster.rs` stays std-only because examples and benches include it by path.
#![allow(dead_code)]

pub mod activity;
pub mod chaos;
pub mod cluster;
pub mod fake_server;
pub mod logs;
pub mod pgbouncer;
pub mod pki;
pub mod pool_mock;
pub mod proxy;
pub mod report;
pub mod scenarios;
pub mod standby;
