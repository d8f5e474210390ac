//! One module per embedding backend.
