//! Known base images: which shell their `/bin/sh` is, and which stop
//! signal they set for the server they run. The shell decides whether
//! `sh -c 'app --port $PORT'` leaves the app as PID 1 or keeps a shell in
//! front of it that never passes SIGTERM on.
//!
//! What each shell does with the last command, measured on Debian bookworm
//! (`tests/shells.rs` runs the shells Debian packages and checks it):
//!
//! | shell | `sh -c 'app --port $PORT'` | `sh -c './migrate && app'` | last line of a script file |
//! | --- | --- | --- | --- |
//! | dash 0.5.12 (`/bin/sh` of Debian and Ubuntu, so of `python`, `node`, `openjdk`, `ruby`, `php`, `nginx`, ...) | forks: `sh` stays PID 1, the app gets no SIGTERM | forks | forks |
//! | BusyBox ash 1.35 (Alpine, `*-alpine` tags) | execs the app (also with `2>&1`) | execs the last | forks |
//! | bash 5.2 | execs, unless a redirection or a `trap` handler is involved | execs the last, the same way | forks |
//! | bash 4.2 (CentOS 7, Amazon Linux 2) | execs a lone simple command | treated as bash 5.2 | forks |
//! | none (distroless, scratch, chiseled) | a shell form cannot even start | — | — |
//!
//! No shell execs a command in the background (`app &`), in a pipeline, a
//! builtin (`app & wait`), or a function of the script; bash and BusyBox
//! fork once a `trap` handler is set.
//!
//! Bases by name ([`base_of`]; a registry host, `library/` and a digest
//! are ignored; the tag decides where an official image has variants):
//!
//! | base | shell |
//! | --- | --- |
//! | `debian`, `ubuntu`, `buildpack-deps`, and the official images built on them with their default or Debian/Ubuntu tags: `python`, `node`, `openjdk`, `eclipse-temurin`, `ruby`, `php`, `golang`, `rust`, `perl`, `elixir`, `erlang`, `gradle`, `maven`, `tomcat`, `nginx`, `httpd`, `haproxy`, `redis`, `postgres`, `mariadb`, `mongo`, `rabbitmq`, `memcached`, `wordpress`, `mcr.microsoft.com/dotnet/*` ... | dash |
//! | `alpine`, `busybox`, any official image's `*-alpine` tag, `traefik`, `caddy`, `chainguard/*-dev` | BusyBox |
//! | `centos`, `rockylinux`, `almalinux`, `oraclelinux`, `fedora`, `amazonlinux`, `amazoncorretto`, `redhat/ubi*`, `*/ubi8*`, `*/ubi9*`, `mysql` (Oracle Linux), `*-ubi*`, `*-azurelinux*` tags; any base whose `SHELL` names bash | bash |
//! | `scratch`, `gcr.io/distroless/*`, `chainguard/*` (not `-dev`), `*-chiseled*` tags | none |
//! | `nanoserver`, `servercore`, `windows/*` | Windows: `cmd /S /C`, not known |
//! | anything else | unknown |

/// The shell behind `/bin/sh` (or `SHELL`) of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// dash: forks the last command of `sh -c`.
    Dash,
    /// BusyBox ash: execs a lone command of `sh -c`, redirections too.
    BusyBox,
    /// bash: execs a lone simple command of `bash -c` without redirections.
    Bash,
    /// No shell at all: a shell form cannot start.
    None,
    /// A Windows image: shell forms run under `cmd /S /C`, not `/bin/sh`.
    Windows,
    /// A base not in the table.
    Unknown,
}

impl Shell {
    /// Whether the shell execs the last command of a `-c` script, when
    /// that command could be exec'd at all (see [`crate::forks::verdict`]):
    /// `Some(true)` it does, `Some(false)` it forks and stays PID 1, `None`
    /// not known (or no shell). `redirects` says the command has a
    /// redirection.
    pub fn execs(self, redirects: bool) -> Option<bool> {
        match self {
            Shell::Dash => Some(false),
            Shell::BusyBox => Some(true),
            Shell::Bash => Some(!redirects),
            Shell::None | Shell::Unknown | Shell::Windows => None,
        }
    }

    /// What to call it in a message: `dash`, `BusyBox ash`...
    pub fn name(self) -> &'static str {
        match self {
            Shell::Dash => "dash",
            Shell::BusyBox => "BusyBox ash",
            Shell::Bash => "bash",
            Shell::None => "no shell",
            Shell::Windows => "cmd",
            Shell::Unknown => "an unknown shell",
        }
    }

    /// The family of a shell program named in an argv or `SHELL`
    /// (`/bin/bash`, `ash`...); `None` for `sh`, which is the image's.
    pub fn of_program(program: &str) -> Option<Shell> {
        match program.rsplit('/').next().unwrap_or(program) {
            "bash" => Some(Shell::Bash),
            "ash" | "busybox" => Some(Shell::BusyBox),
            "dash" => Some(Shell::Dash),
            "sh" => None,
            _ => Some(Shell::Unknown),
        }
    }
}

/// What lameduck knows of a base image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Base {
    /// Its `/bin/sh`.
    pub shell: Shell,
    /// The distribution underneath, for messages (`Debian`, `Alpine`...).
    pub distro: &'static str,
    /// The STOPSIGNAL it sets, and for which server: official `nginx`
    /// (QUIT), `php:*-fpm` (QUIT), `httpd` and `php:*-apache` (WINCH).
    pub stop_signal: Option<(&'static str, &'static str)>,
}

/// Official images built on Debian or Ubuntu unless their tag says else.
const DEBIAN_FAMILY: &[&str] = &[
    "debian",
    "ubuntu",
    "buildpack-deps",
    "python",
    "pypy",
    "node",
    "openjdk",
    "eclipse-temurin",
    "ibmjava",
    "ruby",
    "php",
    "golang",
    "rust",
    "perl",
    "elixir",
    "erlang",
    "haskell",
    "julia",
    "r-base",
    "gradle",
    "maven",
    "tomcat",
    "jetty",
    "nginx",
    "httpd",
    "haproxy",
    "redis",
    "postgres",
    "mariadb",
    "mongo",
    "rabbitmq",
    "memcached",
    "cassandra",
    "elasticsearch",
    "wordpress",
    "drupal",
    "ghost",
    "odoo",
    "nextcloud",
    "sonarqube",
    "swift",
    "dart",
    "clojure",
    "groovy",
];

const ALPINE_FAMILY: &[&str] = &["alpine", "busybox", "traefik", "caddy", "telegraf"];

const RHEL_FAMILY: &[&str] = &[
    "centos",
    "rockylinux",
    "almalinux",
    "oraclelinux",
    "fedora",
    "amazonlinux",
    "amazoncorretto",
    "mysql",
    "ubi7",
    "ubi8",
    "ubi9",
    "ubi8-minimal",
    "ubi9-minimal",
    "ubi8/ubi",
    "ubi9/ubi",
    "ubi8/ubi-minimal",
    "ubi9/ubi-minimal",
];

/// The base image `image` (as `FROM` or a pod's `image:` names it).
pub fn base_of(image: &str) -> Base {
    let image = image.trim();
    let without_digest = image.split('@').next().unwrap_or(image);
    // `host:5000/repo:tag`: the tag is after the last `/`.
    let (repo, tag) = match without_digest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (without_digest, ""),
    };
    let repo = repo.to_ascii_lowercase();
    let tag = tag.to_ascii_lowercase();
    let mut parts: Vec<&str> = repo.split('/').collect();
    // A registry host has a dot or a port, or is localhost.
    let host = match parts.first() {
        Some(first) if parts.len() > 1 && (first.contains(['.', ':']) || *first == "localhost") => {
            parts.remove(0)
        }
        _ => "",
    };
    if parts.first() == Some(&"library") {
        parts.remove(0);
    }
    let path = parts.join("/");
    let name = parts.last().copied().unwrap_or_default();
    let known = |shell: Shell, distro: &'static str| Base {
        shell,
        distro,
        stop_signal: None,
    };
    let unknown = known(Shell::Unknown, "");
    if image.contains('$') || path.is_empty() {
        return unknown;
    }
    if path == "scratch" {
        return known(Shell::None, "scratch");
    }
    if host == "gcr.io" && path.starts_with("distroless/") {
        return known(Shell::None, "distroless");
    }
    if path.starts_with("chainguard/") || host == "cgr.dev" {
        return match tag.contains("-dev") || tag == "dev" || name == "wolfi-base" {
            true => known(Shell::BusyBox, "Wolfi"),
            false => known(Shell::None, "Chainguard (no shell)"),
        };
    }
    if tag.contains("nanoserver") || tag.contains("servercore") || path.starts_with("windows/") {
        return known(Shell::Windows, "Windows");
    }
    if tag.contains("chiseled") || tag.contains("distroless") {
        return known(Shell::None, "chiseled Ubuntu (no shell)");
    }
    if tag.contains("alpine") || ALPINE_FAMILY.contains(&path.as_str()) {
        return with_signal(known(Shell::BusyBox, "Alpine"), &path, &tag);
    }
    if tag.contains("ubi")
        || tag.contains("azurelinux")
        || tag.contains("cbl-mariner")
        || tag.contains("al2")
        || tag.contains("oraclelinux")
        || tag.contains("amazoncorretto")
        || tag.contains("centos")
    {
        return known(Shell::Bash, "RHEL family");
    }
    let rhel = RHEL_FAMILY.contains(&path.as_str())
        || path.starts_with("redhat/ubi")
        || path.starts_with("ubi8/")
        || path.starts_with("ubi9/")
        || host == "registry.access.redhat.com"
        || host == "registry.redhat.io";
    if rhel
        && ["debian", "bookworm", "bullseye", "oracle"]
            .iter()
            .any(|d| tag.contains(d))
        && path == "mysql"
    {
        return known(
            if tag.contains("oracle") {
                Shell::Bash
            } else {
                Shell::Dash
            },
            "Debian",
        );
    }
    if rhel {
        let distro = match (path.as_str(), tag.as_str()) {
            ("centos", t) if t.starts_with('7') || t.is_empty() => "CentOS 7, bash 4.2",
            ("amazonlinux" | "amazoncorretto", t) if !t.contains("2023") => {
                "Amazon Linux 2, bash 4.2"
            }
            ("mysql", _) => "Oracle Linux",
            _ => "RHEL family",
        };
        return known(Shell::Bash, distro);
    }
    let official = host.is_empty() || host == "docker.io" || host == "mcr.microsoft.com";
    let debian = DEBIAN_FAMILY.contains(&path.as_str())
        || (host == "mcr.microsoft.com" && path.starts_with("dotnet/"));
    if official && debian {
        let distro = match path.as_str() {
            "ubuntu" | "eclipse-temurin" | "tomcat" | "mariadb" | "mongo" | "rabbitmq" => "Ubuntu",
            _ if ["jammy", "focal", "noble"].iter().any(|u| tag.contains(u)) => "Ubuntu",
            _ => "Debian",
        };
        return with_signal(known(Shell::Dash, distro), &path, &tag);
    }
    unknown
}

/// The STOPSIGNAL an official server image sets for its server.
fn with_signal(mut base: Base, path: &str, tag: &str) -> Base {
    base.stop_signal = match path {
        "nginx" => Some(("nginx", "QUIT")),
        "httpd" => Some(("Apache httpd", "WINCH")),
        "php" if tag.contains("fpm") => Some(("php-fpm", "QUIT")),
        "php" if tag.contains("apache") => Some(("Apache httpd", "WINCH")),
        _ => None,
    };
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_images_by_tag() {
        let shell = |image: &str| base_of(image).shell;
        assert_eq!(shell("python:3.12"), Shell::Dash);
        assert_eq!(shell("python:3.12-slim-bookworm"), Shell::Dash);
        assert_eq!(shell("docker.io/library/node:20"), Shell::Dash);
        assert_eq!(shell("openjdk:11"), Shell::Dash);
        assert_eq!(shell("node:20-alpine"), Shell::BusyBox);
        assert_eq!(shell("alpine:3.19"), Shell::BusyBox);
        assert_eq!(shell("centos:7"), Shell::Bash);
        assert_eq!(shell("amazoncorretto:17"), Shell::Bash);
        assert_eq!(shell("amazoncorretto:17-alpine"), Shell::BusyBox);
        assert_eq!(
            shell("registry.access.redhat.com/ubi9/ubi-minimal:9.4"),
            Shell::Bash
        );
        assert_eq!(shell("eclipse-temurin:21-ubi9-minimal"), Shell::Bash);
        assert_eq!(shell("gcr.io/distroless/java17-debian12"), Shell::None);
        assert_eq!(shell("scratch"), Shell::None);
        assert_eq!(shell("mcr.microsoft.com/dotnet/aspnet:8.0"), Shell::Dash);
        assert_eq!(
            shell("mcr.microsoft.com/dotnet/aspnet:8.0-jammy-chiseled"),
            Shell::None
        );
        assert_eq!(
            shell("mcr.microsoft.com/dotnet/aspnet:8.0-nanoserver-ltsc2022"),
            Shell::Windows
        );
        assert_eq!(
            shell("registry.example.com:5000/team/app:1.2"),
            Shell::Unknown
        );
        assert_eq!(shell("${BASE}"), Shell::Unknown);
        assert_eq!(shell("python@sha256:abc"), Shell::Dash);
    }

    #[test]
    fn inherited_stop_signals() {
        let signal = |image: &str| base_of(image).stop_signal.map(|(_, s)| s);
        assert_eq!(signal("nginx:1.27"), Some("QUIT"));
        assert_eq!(signal("nginx:1.27-alpine"), Some("QUIT"));
        assert_eq!(signal("php:8.3-fpm"), Some("QUIT"));
        assert_eq!(signal("php:8.3-apache"), Some("WINCH"));
        assert_eq!(signal("httpd:2.4"), Some("WINCH"));
        assert_eq!(signal("php:8.3-cli"), None);
        assert_eq!(signal("debian:12"), None);
    }

    #[test]
    fn what_each_shell_does_with_the_last_command() {
        assert_eq!(Shell::Dash.execs(false), Some(false));
        assert_eq!(Shell::BusyBox.execs(true), Some(true));
        assert_eq!(Shell::Bash.execs(false), Some(true));
        assert_eq!(Shell::Bash.execs(true), Some(false));
        assert_eq!(Shell::Unknown.execs(false), None);
    }
}
