//! Shared pieces of the benchmarks.
#![allow(dead_code)]
pub mod mock_upstream;
