//! `lab calibrate` (to be implemented).

use crate::error::{LabError, LabResult};
use clap::Args;

#[derive(Args, Debug)]
pub struct CalibrateArgs {}

pub fn main(_args: CalibrateArgs) -> LabResult<i32> {
    Err(LabError::failed("'lab calibrate' is not implemented yet"))
}
