//! `lameduck webhook certs`: a CA and a serving certificate for the
//! webhook's Service, for clusters without cert-manager.
//!
//! The files are named as a Kubernetes TLS Secret names its keys (`ca.crt`,
//! `tls.crt`, `tls.key`), so `kubectl create secret tls` and kustomize's
//! `secretGenerator` take them as they are; the CA is also what the
//! MutatingWebhookConfiguration's `caBundle` holds, base64-encoded.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use crate::error::Error;

/// What to make certificates for.
#[derive(Clone, Debug)]
pub struct Request {
    /// The webhook's Service name.
    pub service: String,
    /// Its namespace.
    pub namespace: String,
    /// The directory the files are written to (made if missing).
    pub out: PathBuf,
    /// Days the serving certificate is valid; the CA is valid ten times as
    /// long, so a new serving certificate needs no new caBundle.
    pub days: u32,
    /// Overwrite files that exist.
    pub force: bool,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct Written {
    /// The files, in the order `ca.crt`, `tls.crt`, `tls.key`.
    pub files: Vec<PathBuf>,
    /// The DNS names the serving certificate is for.
    pub names: Vec<String>,
    /// The webhook configuration's `caBundle`: `ca.crt`, base64-encoded.
    pub ca_bundle: String,
}

/// Makes the CA and the serving certificate and writes them to `out`.
pub fn generate(req: &Request) -> Result<Written, Error> {
    for (what, name) in [("--service", &req.service), ("--namespace", &req.namespace)] {
        if !is_dns_label(name) {
            return Err(Error::Usage(format!(
                "{what} {name:?} is not a Kubernetes name: lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit"
            )));
        }
    }
    if req.days == 0 || req.days > 3650 {
        return Err(Error::Usage(format!(
            "--days {} is out of range: give 1 to 3650",
            req.days
        )));
    }
    let files: Vec<PathBuf> = ["ca.crt", "tls.crt", "tls.key"]
        .iter()
        .map(|f| req.out.join(f))
        .collect();
    if !req.force {
        if let Some(existing) = files.iter().find(|f| f.exists()) {
            return Err(Error::Usage(format!(
                "{} exists: pass --force to replace it",
                existing.display()
            )));
        }
    }
    let (service, ns) = (&req.service, &req.namespace);
    let names = vec![
        format!("{service}.{ns}.svc"),
        format!("{service}.{ns}.svc.cluster.local"),
        format!("{service}.{ns}"),
        service.clone(),
    ];
    let certs = |e: rcgen::Error| Error::Certs(e.to_string());
    let now = OffsetDateTime::now_utc();
    // An hour back, for clocks a little behind ours.
    let not_before = now - Duration::hours(1);
    let days = i64::from(req.days);

    let ca_key = KeyPair::generate().map_err(certs)?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name(&format!("lameduck webhook CA for {service}.{ns}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = now + Duration::days(days * 10);
    let ca_cert = ca.self_signed(&ca_key).map_err(certs)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(certs)?;
    let mut leaf = CertificateParams::new(names.clone()).map_err(certs)?;
    leaf.distinguished_name = name(&names[0]);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = not_before;
    leaf.not_after = now + Duration::days(days);
    let cert = leaf.signed_by(&key, &issuer).map_err(certs)?;

    fs::create_dir_all(&req.out).map_err(|source| Error::File {
        path: req.out.clone(),
        source,
    })?;
    let ca_pem = ca_cert.pem();
    write(&files[0], ca_pem.as_bytes(), 0o644)?;
    write(&files[1], cert.pem().as_bytes(), 0o644)?;
    write(&files[2], key.serialize_pem().as_bytes(), 0o600)?;
    Ok(Written {
        files,
        names,
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca_pem),
    })
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common);
    dn
}

/// Writes a file whole under a temporary name, then renames it, so a
/// reader never sees half of it.
fn write(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let err = |source| Error::File {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(err)?;
    file.write_all(contents).map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

/// An RFC 1123 label, as Service and namespace names must be.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(is_dns_label("lameduck-webhook"));
        for bad in ["", "-a", "a-", "A", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
