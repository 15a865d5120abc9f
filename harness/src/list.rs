//! `lab list` (to be implemented).

use crate::error::{LabError, LabResult};
use clap::Args;

#[derive(Args, Debug)]
pub struct ListArgs {}

pub fn main(_args: ListArgs) -> LabResult<i32> {
    Err(LabError::failed("'lab list' is not implemented yet"))
}
