//! Waymark: polls carriers for a merchant's shipments, detects what matters to the customer, and
//! tells them first.
//!
//! The flow of one shipment follows the modules: [`store`] keeps shipments and the outbox,
//! [`scheduler`] polls the [`carriers`], the [`domain`] detectors decide what deserves a message,
//! and [`notify`] renders and sends it.
#![forbid(unsafe_code)]

pub mod domain;
pub mod carriers;
pub mod clock;
pub mod store;
pub mod notify;
pub mod config;
pub mod scheduler;
pub mod intake;
pub mod app;
pub mod cli;
pub mod printout;
pub mod demo;
pub mod http;
