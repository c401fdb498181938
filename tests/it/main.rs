//! The one integration-test binary: the engine on real databases, the real binary over HTTP
//! and as a process that is killed.

mod acts;
mod api;
mod audit_chain;
mod authz;
mod bounded_templates;
mod bundle;
mod check_workflows;
mod crash;
mod engine_store;
mod helpers;
mod files_and_keys;
mod hostile;
mod http;
mod identity;
mod jwks;
mod layers;
mod matrix;
mod schema;
mod cost;
mod cursors;
mod delivery;
mod draw;
mod edge;
mod outbox_faults;
mod parsers;
mod provisional;
mod public;
mod races;
mod returns;
mod statistics;
mod smtp;
mod storage_faults;
mod timers;
mod webhooks;
mod window;
