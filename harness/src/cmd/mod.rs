pub mod args;
pub mod check;
pub mod compare;
pub mod list;
pub mod plot;
pub mod profile;
pub mod run;
pub mod sweep;
