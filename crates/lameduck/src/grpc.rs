//! gRPC with tonic: the health service follows the drain.
//!
//! gRPC clients and balancers that check `grpc.health.v1.Health` stop
//! sending to a server that answers `NOT_SERVING`, the gRPC side of a failing
//! readiness probe. Serve tonic's routes through
//! [`http::serve`](crate::http::serve) so streams in flight finish and clients
//! get GOAWAY the graceful way.

use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::drain::Drain;
use lameduck_core::Phase;

/// Turns the overall health (`""`) and every service in `services` to
/// `NOT_SERVING` the moment the drain begins.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let drain = lameduck::Drain::new();
/// let (reporter, health_service) = tonic_health::server::health_reporter();
/// reporter.set_service_status("echo.Echo", tonic_health::ServingStatus::Serving).await;
/// lameduck::grpc::health_follows(&drain, reporter, ["echo.Echo"]);
/// // ... serve `health_service` beside the others with lameduck::http::serve
/// # drop(health_service);
/// # }
/// ```
pub fn health_follows<I, N>(drain: &Drain, reporter: HealthReporter, services: I)
where
    I: IntoIterator<Item = N>,
    N: Into<String>,
{
    let services: Vec<String> = std::iter::once(String::new())
        .chain(services.into_iter().map(Into::into))
        .collect();
    drain.on(
        Phase::Draining,
        "grpc health: NOT_SERVING",
        move || async move {
            for service in services {
                reporter
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
            Ok::<_, std::convert::Infallible>(())
        },
    );
}
