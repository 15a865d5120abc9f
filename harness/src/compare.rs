//! `lab compare` (to be implemented).

use crate::error::{LabError, LabResult};
use clap::Args;

#[derive(Args, Debug)]
pub struct CompareArgs {}

pub fn main(_args: CompareArgs) -> LabResult<i32> {
    Err(LabError::failed("'lab compare' is not implemented yet"))
}
