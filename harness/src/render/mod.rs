pub mod check;
pub mod export;
pub mod plot;
pub mod profile;
pub mod terminal;
