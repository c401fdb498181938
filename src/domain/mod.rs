//! Pure domain types and rules, free of storage and transport.
pub mod calendar;
pub mod definitions;
pub mod ids;
pub mod reason;
pub mod return_rule;
pub mod shipped;
