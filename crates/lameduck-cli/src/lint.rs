//! `lameduck lint`: flags to [`lameduck_lint`].

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use lameduck_lint::walk::Input;
use lameduck_lint::{dockerfile, manifest, output, rules, walk, Finding, Severity};

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
    /// Dockerfile, *.Dockerfile, Containerfile, *.yaml, *.yml, *.json); `-`
    /// reads standard input (`helm template ./chart | lameduck lint -`).
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

    /// Print the page of rule ID (why, a bad and a good example) and exit.
    #[arg(long, value_name = "ID")]
    explain: Option<String>,
}

/// Lints one input; returns false (after saying why) when it cannot be
/// parsed.
fn lint_text(
    name: &str,
    path: &std::path::Path,
    text: &str,
    findings: &mut Vec<Finding>,
    inventory: &mut manifest::Inventory,
) -> bool {
    match walk::input_kind(path, text) {
        // A file's directory is its build context: scripts it copies in are read.
        Input::Dockerfile if name != "-" => {
            findings.extend(dockerfile::lint_file(path, text));
            true
        }
        Input::Dockerfile => {
            findings.extend(dockerfile::lint(name, text));
            true
        }
        Input::Manifest => match manifest::collect(name, text, inventory) {
            Ok(found) => {
                findings.extend(found);
                true
            }
            Err(e) => {
                eprintln!(
                    "lameduck lint: {name}:{}:{}: cannot parse: {}",
                    e.line, e.column, e.message
                );
                false
            }
        },
    }
}

/// Runs the linter; returns the exit status.
pub fn run(args: LintArgs) -> i32 {
    if let Some(id) = &args.explain {
        return match rules::find(id) {
            Some(rule) => {
                print!("{}", rule.page);
                0
            }
            None => {
                let known: Vec<_> = rules::ALL.iter().map(|r| r.id).collect();
                eprintln!(
                    "lameduck lint: no rule {id:?}; the rules are {}",
                    known.join(", ")
                );
                2
            }
        };
    }
    if args.paths.is_empty() {
        eprintln!("lameduck lint: give files or directories to lint, or - for standard input");
        return 2;
    }
    let mut findings: Vec<Finding> = Vec::new();
    let mut sources = std::collections::HashMap::new();
    let mut unreadable = false;
    // Services and the workloads they select may come from different files.
    let mut inventory = manifest::Inventory::default();
    for root in &args.paths {
        if root.as_os_str() == "-" {
            let mut text = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut text) {
                eprintln!("lameduck lint: cannot read standard input: {e}");
                unreadable = true;
                continue;
            }
            unreadable |= !lint_text(
                "-",
                std::path::Path::new("-"),
                &text,
                &mut findings,
                &mut inventory,
            );
            sources.insert("-".to_owned(), text);
            continue;
        }
        let files = match walk::files(root) {
            Ok(files) => files,
            Err(e) => {
                eprintln!("lameduck lint: cannot read {}: {e}", root.display());
                unreadable = true;
                continue;
            }
        };
        for file in files {
            let name = file.display().to_string();
            match std::fs::read(&file).map(String::from_utf8) {
                Ok(Ok(text)) => {
                    unreadable |= !lint_text(&name, &file, &text, &mut findings, &mut inventory);
                    sources.insert(name, text);
                }
                Ok(Err(_)) => {
                    eprintln!("lameduck lint: {name}: not UTF-8 text, skipped");
                    unreadable = true;
                }
                Err(e) => {
                    eprintln!("lameduck lint: cannot read {name}: {e}");
                    unreadable = true;
                }
            }
        }
    }
    findings.extend(inventory.findings());
    // The nearest .lameduck.yaml above the first path (or the current
    // directory for standard input).
    let start = match args.paths.first() {
        Some(p) if p.as_os_str() != "-" => p.clone(),
        _ => PathBuf::from("."),
    };
    let config = match lameduck_lint::config::Config::find(&start) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("lameduck lint: {e}");
            return 2;
        }
    };
    let mut disable = args.disable.clone();
    disable.extend(config.disable.iter().cloned());
    let fail_on = args.fail_on.or(config.fail_on).unwrap_or(Severity::Warning);
    for id in &args.disable {
        if rules::find(id).is_none() {
            eprintln!("lameduck lint: --disable {id}: no such rule");
            return 2;
        }
    }
    findings.retain(|f| !disable.iter().any(|d| d.eq_ignore_ascii_case(f.rule)));
    let text = match args.format {
        Format::Human => output::human(&findings, |path| sources.get(path).cloned()),
        Format::Json => output::json(&findings) + "\n",
        Format::Sarif => output::sarif(&findings) + "\n",
        Format::Github => output::github(&findings),
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, &text),
        None => {
            print!("{text}");
            Ok(())
        }
    };
    if let Err(e) = written {
        eprintln!("lameduck lint: cannot write the findings: {e}");
        return 2;
    }
    if matches!(args.format, Format::Human) {
        let errors = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        eprintln!(
            "lameduck lint: {} finding(s), {errors} error(s), in {} file(s)",
            findings.len(),
            sources.len()
        );
    }
    if unreadable {
        2
    } else if findings.iter().any(|f| f.severity >= fail_on) {
        1
    } else {
        0
    }
}
