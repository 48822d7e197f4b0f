//! Telling people: rendering messages from templates and sending them.

pub mod render;
