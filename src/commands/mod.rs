//! Glue for the service-side commands: `daemon`, `config`, `servers`, `changes`, `check` and `export`. Each
//! turns its flags into typed settings, calls the library and writes the result; none holds
//! logic of its own. (`scan`, `probe` and `watch` are their own top-level modules.)

pub mod check;
pub mod config;
pub mod export;
pub mod inventory;
