//! Telling people: rendering messages from templates and sending them.

pub mod brand;
pub mod dispatcher;
pub mod email;
pub mod format;
pub mod merchant_mail;
pub mod preview;
pub mod quiet_hours;
pub mod render;
