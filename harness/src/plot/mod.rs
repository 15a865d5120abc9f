//! `lab plot` (to be implemented).

use crate::error::{LabError, LabResult};
use clap::Args;

#[derive(Args, Debug)]
pub struct PlotArgs {}

pub fn main(_args: PlotArgs) -> LabResult<i32> {
    Err(LabError::failed("'lab plot' is not implemented yet"))
}
