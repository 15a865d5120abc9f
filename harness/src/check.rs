//! `lab check` (to be implemented).

use crate::error::{LabError, LabResult};
use clap::Args;

#[derive(Args, Debug)]
pub struct CheckArgs {}

pub fn main(_args: CheckArgs) -> LabResult<i32> {
    Err(LabError::failed("'lab check' is not implemented yet"))
}
