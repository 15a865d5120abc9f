//! `lab profile` (to be implemented).

use crate::error::{LabError, LabResult};
use clap::Args;

#[derive(Args, Debug)]
pub struct ProfileArgs {}

pub fn main(_args: ProfileArgs) -> LabResult<i32> {
    Err(LabError::failed("'lab profile' is not implemented yet"))
}
