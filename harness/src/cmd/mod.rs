pub mod args;
pub mod check;
pub mod list;
pub mod profile;
pub mod sweep;
