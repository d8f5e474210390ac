//! What each kind of target does.
