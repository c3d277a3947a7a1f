//! What the pool logs, captured for a test to read back: a `tracing` `fmt` subscriber writing
//! into a shared buffer, installed for the current thread.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything the `fmt` subscriber writes.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs a subscriber writing here, at `INFO` and above, for this thread (the
    /// current-thread runtime of a `#[tokio::test]` runs the pool's tasks on it too).
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let out = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The line that mentions `needle`.
    pub fn line_with(&self, needle: &str) -> String {
        let text = self.text();
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
            .to_owned()
    }
}
