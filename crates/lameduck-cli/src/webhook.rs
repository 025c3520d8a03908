//! `lameduck webhook`: flags to [`lameduck_webhook`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use lameduck_webhook::{certs, install, Config};

use crate::logging::{fail, usage_error};

/// The lameduck image the injected init container copies the binary from.
const DEFAULT_IMAGE: &str = concat!("ghcr.io/lameduck-dev/lameduck:", env!("CARGO_PKG_VERSION"));

/// Flags of `lameduck webhook`; each also read from its
/// `LAMEDUCK_WEBHOOK_*` variable.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Serves POST /mutate (pods annotated lameduck.io/inject: \"true\") and POST \
    /mutate-namespace (every pod of a namespace labelled lameduck.io/inject=true, unless it says \
    \"false\") over HTTPS; the certificate files are read again when they change.\n\n\
    Example:\n  lameduck webhook --listen 0.0.0.0:8443 --tls-cert /tls/tls.crt --tls-key /tls/tls.key --admin 0.0.0.0:9901\n  \
    lameduck webhook certs --service lameduck-webhook --namespace lameduck --out certs/"
)]
pub struct WebhookArgs {
    #[command(subcommand)]
    command: Option<WebhookCommand>,

    /// HTTPS address the API server calls.
    #[arg(
        long,
        env = "LAMEDUCK_WEBHOOK_LISTEN",
        required = true,
        value_name = "ADDR"
    )]
    listen: Option<SocketAddr>,

    /// Serving certificate chain, PEM (a TLS Secret's tls.crt).
    #[arg(
        long,
        env = "LAMEDUCK_WEBHOOK_TLS_CERT",
        required = true,
        value_name = "FILE"
    )]
    tls_cert: Option<PathBuf>,

    /// Its private key, PEM (a TLS Secret's tls.key).
    #[arg(
        long,
        env = "LAMEDUCK_WEBHOOK_TLS_KEY",
        required = true,
        value_name = "FILE"
    )]
    tls_key: Option<PathBuf>,

    /// Address of /ready, /live and /metrics (plain HTTP).
    #[arg(long, env = "LAMEDUCK_WEBHOOK_ADMIN", value_name = "ADDR")]
    admin: Option<SocketAddr>,

    /// The lameduck image the injected init container copies the binary
    /// from.
    #[arg(long, env = "LAMEDUCK_WEBHOOK_IMAGE", default_value = DEFAULT_IMAGE, value_name = "IMAGE")]
    image: String,
}

#[derive(Debug, Subcommand)]
enum WebhookCommand {
    /// Make a CA and a serving certificate for the webhook's Service, for
    /// clusters without cert-manager; prints the caBundle.
    Certs(CertsArgs),
    /// Copy this lameduck binary to PATH (what the injected init container
    /// runs).
    CopyBinary {
        /// Where the binary goes.
        #[arg(value_name = "PATH")]
        dest: PathBuf,
    },
}

/// Flags of `lameduck webhook certs`.
#[derive(Debug, Args)]
#[command(
    after_help = "Writes ca.crt, tls.crt and tls.key (the keys of a Kubernetes TLS \
    Secret) and prints the caBundle of the webhook configuration (ca.crt, base64).\n\n\
    Example:\n  lameduck webhook certs --service lameduck-webhook --namespace lameduck --out certs/"
)]
struct CertsArgs {
    /// The webhook's Service.
    #[arg(long, value_name = "NAME")]
    service: String,
    /// The Service's namespace.
    #[arg(long, value_name = "NS")]
    namespace: String,
    /// Directory for the files (made if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Days the serving certificate is valid (the CA: ten times as long).
    #[arg(long, default_value_t = 365, value_name = "DAYS")]
    days: u32,
    /// Replace files that exist.
    #[arg(long)]
    force: bool,
}

/// Runs `lameduck webhook`; returns the exit status.
pub fn run(args: WebhookArgs) -> i32 {
    let result = match args.command {
        Some(WebhookCommand::Certs(c)) => certs::generate(&certs::Request {
            service: c.service,
            namespace: c.namespace,
            out: c.out,
            days: c.days,
            force: c.force,
        })
        .map(|written| {
            tracing::info!(
                names = %written.names.join(", "),
                "wrote {}",
                written.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", ")
            );
            println!("{}", written.ca_bundle);
        }),
        Some(WebhookCommand::CopyBinary { dest }) => {
            return match install::copy_binary(&dest) {
                Ok(bytes) => {
                    tracing::info!(bytes, "copied lameduck to {}", dest.display());
                    0
                }
                Err(e) => fail(
                    1,
                    format!("cannot copy lameduck to {}: {e}", dest.display()),
                ),
            };
        }
        None => match (args.listen, args.tls_cert, args.tls_key) {
            (Some(listen), Some(tls_cert), Some(tls_key)) => lameduck_webhook::serve(Config {
                listen,
                tls_cert,
                tls_key,
                admin: args.admin,
                image: args.image,
            }),
            _ => return usage_error("--listen, --tls-cert and --tls-key are required"),
        },
    };
    match result {
        Ok(()) => 0,
        Err(e) => fail(e.exit_code(), e),
    }
}
