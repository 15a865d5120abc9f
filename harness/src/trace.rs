//! Chrome trace-event output for `lab run --trace FILE` (to be implemented).

use rmap_workloads::ThreadHook;
use std::path::{Path, PathBuf};

pub struct TraceWriter {
    path: PathBuf,
}

impl TraceWriter {
    pub fn new(path: &Path) -> TraceWriter {
        TraceWriter {
            path: path.to_path_buf(),
        }
    }

    /// Write the collected events to the file (atomically).
    pub fn finish(&self) -> std::io::Result<()> {
        let _ = &self.path;
        Ok(())
    }
}

impl ThreadHook for TraceWriter {}
