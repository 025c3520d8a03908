//! `lameduck lint`: flags to [`lameduck_lint`].

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use lameduck_lint::config::Config;
use lameduck_lint::select::{self, RuleSet};
use lameduck_lint::{output, rules, Severity};

use crate::logging::{fail, usage_error};

/// How findings are written.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// Like rustc: file:line:column, the line, the fix.
    Human,
    /// One JSON array.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// GitHub Actions workflow annotations.
    Github,
}

/// Flags of `lameduck lint`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lameduck lint Dockerfile deploy/\n  lameduck lint --format sarif -o lint.sarif k8s/\n  lameduck lint --explain LD101\n\nExit status: 0 clean, 1 findings at or above --fail-on, 2 usage or unreadable input."
)]
pub struct LintArgs {
    /// Files and directories to lint (directories are walked for
    /// Dockerfile, *.Dockerfile, Containerfile, *.yaml, *.yml, *.json,
    /// skipping what .gitignore and .ignore exclude and hidden files, as
    /// ripgrep does); `-` reads standard input (`helm template ./chart |
    /// lameduck lint -`). A file named here is always linted.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Output format.
    #[arg(
        long,
        env = "LAMEDUCK_LINT_FORMAT",
        default_value = "human",
        value_name = "FORMAT"
    )]
    format: Format,

    /// Write the findings to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Exit with 1 when a finding is at least this severe: error, warning,
    /// info. Default: `fail-on` of .lameduck.yaml, else warning.
    #[arg(long, env = "LAMEDUCK_LINT_FAIL_ON", value_name = "SEVERITY")]
    fail_on: Option<Severity>,

    /// Rules to leave out, by ID (repeat or comma-separate), besides those
    /// `disable`d in .lameduck.yaml.
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    disable: Vec<String>,

    /// Rules to run that are off by default or disabled in .lameduck.yaml,
    /// by ID (repeat or comma-separate). The command line wins over the
    /// file.
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    enable: Vec<String>,

    /// Print the page of rule ID (why, a bad and a good example) and exit.
    #[arg(long, value_name = "ID")]
    explain: Option<String>,
}

/// Runs the linter; returns the exit status.
pub fn run(args: LintArgs) -> i32 {
    if let Some(id) = &args.explain {
        return match rules::find(id) {
            Some(rule) => {
                print!("{}", rule.page);
                0
            }
            None => usage_error(format!(
                "no rule {id:?}; the rules are {}",
                rules::ids().join(", ")
            )),
        };
    }
    if args.paths.is_empty() {
        return usage_error("give files or directories to lint, or - for standard input");
    }
    if let Err(e) = select::check_ids(&args.enable, &args.disable) {
        return usage_error(e);
    }
    // The nearest .lameduck.yaml above the first path (or the current
    // directory for standard input).
    let start = match args.paths.first() {
        Some(p) if p.as_os_str() != "-" => p.clone(),
        _ => PathBuf::from("."),
    };
    let config = match Config::find(&start) {
        Ok(config) => config,
        Err(e) => return usage_error(e),
    };
    let mut rule_set = RuleSet::defaults();
    rule_set.apply(&config.enable, &config.disable);
    rule_set.apply(&args.enable, &args.disable);
    let fail_on = args.fail_on.or(config.fail_on).unwrap_or(Severity::Warning);

    // Only human output quotes lines: without it, a stream of manifests
    // is linted as it is read and never held whole.
    let options = lameduck_lint::run::Options {
        keep_sources: matches!(args.format, Format::Human),
    };
    let report = lameduck_lint::run::lint_paths_with(
        &args.paths,
        &mut std::io::stdin(),
        &rule_set,
        &options,
    );
    for e in &report.errors {
        tracing::error!("{e}");
    }
    for note in &report.notes {
        tracing::info!("note: {note}");
    }
    let findings = &report.findings;
    let text = match args.format {
        Format::Human => output::human(findings, |path| {
            report.sources.get(path).map(String::as_str)
        }),
        Format::Json => output::json(findings) + "\n",
        Format::Sarif => output::sarif(findings) + "\n",
        Format::Github => output::github(findings),
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, &text),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
    };
    if let Err(e) = written {
        return fail(2, format!("cannot write the findings: {e}"));
    }
    if matches!(args.format, Format::Human) {
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        let failed = report.errors.len();
        if failed == 0 {
            eprintln!(
                "lameduck lint: {} finding(s), {errors} error(s), in {} file(s)",
                findings.len(),
                report.inputs.len()
            );
        } else {
            // Not "0 error(s)": the inputs above were not (all) linted.
            let of_them = match errors {
                0 => String::new(),
                n => format!(" ({n} of severity error)"),
            };
            eprintln!(
                "lameduck lint: failed: {failed} input(s) could not be linted (see above); {} finding(s){of_them} in what was read",
                findings.len()
            );
        }
    }
    if !report.errors.is_empty() {
        2
    } else if findings.iter().any(|f| f.severity >= fail_on) {
        1
    } else {
        0
    }
}
