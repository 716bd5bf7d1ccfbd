//! Support code for the property tests.
pub mod model;
