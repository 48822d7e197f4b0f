//! Compiles the message templates in `templates/` into the binary, and makes a new migration
//! rebuild the crate (`sqlx::migrate!` embeds `migrations/` at compile time).
//!
//! `embed_templates!` prints `cargo:rerun-if-changed=templates`; for a directory Cargo scans
//! every file below it, so editing, adding or deleting a template rebuilds the crate.
//! Only `.html` and `.txt` files are templates: a README or an editor's backup file next to
//! them must not end up in the binary (or break it with a stray `{{`).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    minijinja_embed::embed_templates!("templates", &[".html", ".txt"]);
}
