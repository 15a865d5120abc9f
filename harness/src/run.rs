//! `lab run` (to be implemented).

use crate::error::{LabError, LabResult};
use clap::Args;

#[derive(Args, Debug)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> LabResult<i32> {
    Err(LabError::failed("'lab run' is not implemented yet"))
}
