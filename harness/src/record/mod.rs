pub mod check;
pub mod error;
pub mod file;
pub mod inputs;
pub mod machine;
pub mod result;
pub mod units;
pub mod warnings;
