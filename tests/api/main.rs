//! Waymark's integration tests: the real parts put together — a real SMTP server
//! (`tests/support/smtp_server.py`, Debian's python3-aiosmtpd), real SQLite files, and the real
//! `waymark` binary where a test is about the process itself.
//!
//! Each test has its own temporary directory, database, SMTP server and ports, so they run side
//! by side. Time is simulated (a manual clock moved from one due time to the next, or an
//! accelerated one where real time matters), and the loops are turned one round at a
//! time until the work is done, never "sleep and hope".

mod helpers;

mod browser;
mod carrier_errors;
mod cli;
mod daemon;
mod delivery;
mod delivery_changes;
mod intake;
mod journeys;
mod merchant_api;
mod pages;
mod privacy;
mod quiet_hours;
mod replicas;
