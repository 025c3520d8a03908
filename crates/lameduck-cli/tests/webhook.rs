//! `lameduck webhook` end to end: recorded AdmissionReviews over real
//! HTTPS (curl), bad input, slow clients, certificate rotation, the stop,
//! and the manifests that install it.

mod support;

#[path = "webhook/bad_input.rs"]
mod bad_input;
#[path = "webhook/deploy.rs"]
mod deploy;
#[path = "webhook/golden.rs"]
mod golden;
#[path = "webhook/harness.rs"]
mod harness;
