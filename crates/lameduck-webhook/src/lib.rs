//! `lameduck webhook`: a Kubernetes mutating admission webhook that gives a
//! pod zero-loss termination from one annotation.
//!
//! A pod annotated `lameduck.io/inject: "true"` (or any pod of a namespace
//! labelled `lameduck.io/inject=true`) is changed as it is created: its
//! serving containers run under `lameduck run` with the pod's own grace
//! period, the stop is held back while endpoints are removed, and a grace
//! period too short for that is raised. See [`inject()`] for what changes,
//! [`review`] for the AdmissionReview exchange, [`serve`] for the HTTPS
//! server and [`certs`] for certificates without cert-manager.
#![deny(rust_2018_idioms)]

mod admin;
pub mod annotations;
pub mod certs;
mod error;
pub mod inject;
pub mod install;
mod metrics;
pub mod review;
mod server;
mod tls;

pub use error::Error;
pub use inject::{inject, Outcome};
pub use server::{serve, Config};
