//! TEMPORARY: stands in for `Config::resolve` until the config branch merges (then deleted).

use crate::config::{Config, ConnectParams};
use crate::error::{Error, Result};

impl Config {
    pub(crate) fn resolve(&self) -> Result<ConnectParams> {
        Err(Error::config("not implemented yet"))
    }
}
