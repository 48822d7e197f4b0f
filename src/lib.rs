//! Waymark: polls carriers for a merchant's shipments, detects what matters to the customer, and
//! tells them first.
//!
//! The flow of one shipment follows the modules: [`store`] keeps shipments and the outbox,
//! [`scheduler`] polls the [`carriers`], the [`domain`] detectors decide what deserves a message,
//! and [`notify`] renders and sends it.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod carriers;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery_changes;
pub mod demo;
pub mod domain;
pub mod housekeeping;
pub mod http;
pub mod intake;
pub mod links;
pub mod notify;
pub mod printout;
pub mod redact;
pub mod scheduler;
pub mod secret;
pub mod store;
pub mod vault;
