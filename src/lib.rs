//! pledgeflow runs commitment-based licence approval (告知承诺制) as persistent state machines.
//!
//! Every case and supervision task is an instance of a declarative definition in
//! `workflows/*.toml`. [`workflow`] loads and checks definitions and holds the pure transition
//! function; [`store`] writes what it decides — state, one hash-chained audit event, timers,
//! outbox rows — in one transaction; [`runtime::Engine`] ties both to a database and a clock;
//! [`api`] serves it over GraphQL; [`app`] wires the process together.

pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod load_bench;
pub mod search_bench;
pub mod clock;
pub mod config;
pub mod backup;
pub mod console;
pub mod delivery;
pub mod edge;
pub mod demo;
pub mod domain;
pub mod health;
pub mod insight;
pub mod jobs;
pub mod runtime;
pub mod scheduler;
pub mod store;
pub mod supervision;
pub mod telemetry;
pub mod templating;
pub mod trail;
pub mod traces;
pub mod window;
pub mod workflow;
