//! Regex detector (being written).
