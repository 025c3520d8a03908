//! `lameduck lint`: the termination mistakes in Dockerfiles and Kubernetes
//! manifests, found before they ship.
//!
//! ```
//! let findings = lameduck_lint::dockerfile::lint("Dockerfile", "FROM debian:12\nCMD app --port 8080\n").expect("valid");
//! assert_eq!(findings[0].rule, "LD101");
//! assert_eq!(findings[0].line, 2);
//! ```
#![deny(rust_2018_idioms)]

pub mod config;
pub mod decode;
pub mod dockerfile;
pub mod finding;
pub mod forks;
pub mod images;
pub mod manifest;
pub mod output;
pub mod rules;
pub mod run;
pub mod script;
pub mod select;
pub mod shell;
pub mod walk;
pub mod yaml;

pub use finding::{Finding, Rule, Severity};
