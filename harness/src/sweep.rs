//! `lab sweep` (to be implemented).

use crate::error::{LabError, LabResult};
use clap::Args;

#[derive(Args, Debug)]
pub struct SweepArgs {}

pub fn main(_args: SweepArgs) -> LabResult<i32> {
    Err(LabError::failed("'lab sweep' is not implemented yet"))
}
