pub mod perf;
pub mod progress;
pub mod run;
pub mod sampler;
pub mod trace;
