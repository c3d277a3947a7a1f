//! Password authentication computations: MD5 and SCRAM-SHA-256. Pure functions, no I/O.
//!
//! STUB: to be filled in (issue #2).
