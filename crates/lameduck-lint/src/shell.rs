//! What a command line says about signals: `sh -c` scripts, their last
//! command, and whether it is exec'd.

/// The last path component of a program.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The script of `sh -c SCRIPT` (bash, ash, dash, zsh too; `-ec` and such).
pub fn shell_script(argv: &[String]) -> Option<&str> {
    let shell = basename(argv.first()?);
    if !matches!(shell, "sh" | "bash" | "ash" | "dash" | "zsh") {
        return None;
    }
    let c = argv
        .iter()
        .position(|w| w.starts_with('-') && !w.starts_with("--") && w.ends_with('c'))?;
    argv.get(c + 1).map(String::as_str)
}

/// Whether a script runs more than one command, so the shell cannot simply
/// exec the app in its place.
pub fn is_compound(script: &str) -> bool {
    commands(script).count() > 1
}

/// The script's commands, split at `;`, `&`, `|` and newlines outside
/// quotes.
fn commands(script: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut start, mut quote) = (0, None);
    for (i, c) in script.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '\n' | ';' | '&' | '|') => {
                parts.push(&script[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&script[start..]);
    parts.into_iter().map(str::trim).filter(|c| !c.is_empty())
}

/// Whether the script's last command is `exec`'d, so the app replaces the shell.
pub fn last_is_exec(script: &str) -> bool {
    commands(script)
        .last()
        .is_some_and(|c| c.starts_with("exec "))
}

/// The program the script's last command runs.
pub fn last_command(script: &str) -> Option<&str> {
    let last = commands(script).last()?;
    let word = last
        .strip_prefix("exec ")
        .unwrap_or(last)
        .split_whitespace()
        .next()?;
    Some(basename(word))
}
