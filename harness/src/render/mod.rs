#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod calibrate;
pub mod check;
pub mod export;
pub mod plot;
pub mod profile;
pub mod terminal;
