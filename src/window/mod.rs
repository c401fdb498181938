//! The approval side at the service window: organisation, catalogue, applicants and their
//! credit, and the acts that open and carry a case (issue #5).

pub mod bundle;
pub mod catalogue;
pub mod due_process;
pub mod error;
pub mod intake;
pub mod ordinary;
pub mod quality;
pub mod registry;
pub mod verify;
