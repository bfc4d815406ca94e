//! restore (being written)
