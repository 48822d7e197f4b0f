//! Rendering customer messages from the templates in `templates/`.
