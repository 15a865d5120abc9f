//! How failures reach the user: one line, and an exit status that says
//! which kind of failure it was (the README's "Using the lab" lists them).

use std::fmt;

/// Exit status: success.
pub const EXIT_OK: i32 = 0;
/// Exit status: a correctness violation was found (or `lab check` checked
/// nothing: a run finished no round).
pub const EXIT_VIOLATION: i32 = 1;
/// Exit status: `lab compare --against --fail-on-regression` found a
/// figure that regressed (a script's "this change made it worse").
pub const EXIT_REGRESSION: i32 = 1;
/// Exit status: bad usage or bad input.
pub const EXIT_USAGE: i32 = 2;
/// Exit status: stopped by Ctrl-C after writing what it had (marked
/// `interrupted`), as shells report a SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug)]
pub enum LabError {
    /// Bad flag, impossible configuration, unreadable input: exit 2.
    Usage(String),
    /// Something failed while running (I/O on results, a thread died): exit 2
    /// as well, but worded as a failure, not a usage problem.
    Failed(String),
}

impl LabError {
    pub fn usage(msg: impl Into<String>) -> Self {
        LabError::Usage(msg.into())
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        LabError::Failed(msg.into())
    }
    pub fn exit_code(&self) -> i32 {
        EXIT_USAGE
    }
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Usage(m) | LabError::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LabError {}

impl From<crate::record::result::ResultError> for LabError {
    fn from(e: crate::record::result::ResultError) -> Self {
        LabError::Usage(e.0)
    }
}

pub type LabResult<T> = Result<T, LabError>;
