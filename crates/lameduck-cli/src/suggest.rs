//! "Did you mean" for mistyped commands that clap's own similarity measure
//! (Jaro, over 0.7) lets through: `lameduck rn` scores 0.61 against `run`,
//! yet one dropped letter is the commonest typo of a short word.

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Adds the closest subcommand of `cmd` to an "unrecognized subcommand" error
/// that has no suggestion yet: one within two edits (insert, delete,
/// substitute, swap two neighbours) and fewer edits than the word is long.
pub fn subcommand(mut err: clap::Error, cmd: &clap::Command) -> clap::Error {
    if err.kind() != ErrorKind::InvalidSubcommand
        || has_suggestion(err.get(ContextKind::SuggestedSubcommand))
    {
        return err;
    }
    let Some(ContextValue::String(typed)) = err.get(ContextKind::InvalidSubcommand) else {
        return err;
    };
    let best = cmd
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| (edit_distance(typed, sub.get_name()), sub.get_name()))
        .filter(|&(d, _)| d <= 2 && d < typed.chars().count())
        .min_by_key(|&(d, _)| d);
    if let Some((_, name)) = best {
        err.insert(
            ContextKind::SuggestedSubcommand,
            ContextValue::Strings(vec![name.to_owned()]),
        );
    }
    err
}

fn has_suggestion(value: Option<&ContextValue>) -> bool {
    match value {
        Some(ContextValue::Strings(names)) => !names.is_empty(),
        Some(_) => true,
        None => false,
    }
}

/// Optimal string alignment distance: Levenshtein plus the swap of two
/// neighbouring letters (`rnu` for `run`) as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn one_edit_words() {
        assert_eq!(edit_distance("rn", "run"), 1);
        assert_eq!(edit_distance("rnu", "run"), 1);
        assert_eq!(edit_distance("lnit", "lint"), 1);
        assert_eq!(edit_distance("chek", "check"), 1);
        assert_eq!(edit_distance("deploy", "proxy"), 4);
        assert_eq!(edit_distance("", "run"), 3);
    }
}
