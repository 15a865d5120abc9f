pub mod error;
pub mod result;
pub mod units;
pub mod warnings;
