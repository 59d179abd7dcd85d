//! berth-agent: ECS task definitions in, isolated running tasks out (issue 6).
pub mod cli;
pub mod model;
pub mod store;
pub mod taskdef;
