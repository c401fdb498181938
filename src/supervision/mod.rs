//! The supervising side beyond single tasks (issue #6): the random inspection draw.

pub mod draw;
pub mod draws;
pub mod tasks;
