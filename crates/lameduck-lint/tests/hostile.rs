//! Property tests on hostile input: nesting, expansion and size. Whatever
//! is generated, the linter answers (findings or an error naming a place),
//! never panics, never overflows its stack, and its work stays bounded:
//! each case is generated within fixed sizes and the number of cases is
//! fixed, so the whole test is bounded in time.

use std::collections::BTreeMap;

use lameduck_lint::dockerfile::{self, expand};
use lameduck_lint::{manifest, yaml};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One level of YAML nesting, block or flow, sequence or mapping.
fn opener() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["- ", "a: ", "[", "{a: ", "- - ", "? "])
}

/// A `${...}` reference, nested `depth` deep in defaults and alternatives.
fn nested_reference(names: Vec<u8>, ops: Vec<&'static str>) -> String {
    let mut open = String::new();
    for (name, op) in names.iter().zip(&ops) {
        open += &format!("${{V{}{op}", name % 4);
    }
    open + "x" + &"}".repeat(names.len().min(ops.len()))
}

proptest! {
    #![proptest_config(config())]

    /// Any nesting up to 3,000 deep: parsed, or refused with a place;
    /// past [`yaml::MAX_DEPTH`] always refused.
    #[test]
    fn yaml_nesting_is_parsed_or_refused(levels in prop::collection::vec(opener(), 0..3000)) {
        let text: String = levels.concat() + "x\n";
        let block_depth = levels.iter().map(|l| l.matches("- ").count() + l.matches("a: ").count()).sum::<usize>();
        match yaml::parse_stream(&text) {
            Ok(docs) => prop_assert!(docs.len() <= 1),
            Err(e) => prop_assert!(e.line >= 1 && !e.message.is_empty()),
        }
        if block_depth > yaml::MAX_DEPTH {
            prop_assert!(yaml::parse_stream(&text).is_err());
        }
        // The manifest rules see the same: no panic either way.
        let _ = manifest::lint("deep.yaml", &text);
    }

    /// Chains of ENV (or ARG) that double, triple or copy: every value
    /// stays within [`expand::MAX_EXPANSION`], or the file is refused at
    /// a line.
    #[test]
    fn env_chains_are_bounded(
        keyword in prop::sample::select(vec!["ENV", "ARG"]),
        first in "[a-z]{1,64}",
        fanouts in prop::collection::vec(1usize..5, 1..80),
    ) {
        let mut text = format!("FROM alpine\n{keyword} A0={first}\n");
        for (i, fan) in fanouts.iter().enumerate() {
            let refs = format!("${{A{i}}}").repeat(*fan);
            text += &format!("{keyword} A{}={refs}\n", i + 1);
        }
        text += &format!("CMD app $A{}\n", fanouts.len());
        match dockerfile::lint("Dockerfile", &text) {
            Ok(found) => {
                for f in found {
                    prop_assert!(f.message.len() <= 4 * expand::MAX_EXPANSION);
                }
            }
            Err(e) => {
                prop_assert!(e.message.contains("more than 131072 bytes"), "{}", e.message);
                prop_assert!(e.line >= 3 && e.line <= fanouts.len() + 3);
            }
        }
    }

    /// Nested `${A:-${B:+...}}` of any depth and any mix of set and unset
    /// names: expanded in one pass, or refused past [`expand::MAX_NESTING`].
    #[test]
    fn nested_references_expand_in_one_pass(
        names in prop::collection::vec(any::<u8>(), 0..400),
        ops in prop::collection::vec(prop::sample::select(vec![":-", "-", ":+", "+", ""]), 400),
        copies in 1usize..200,
    ) {
        let reference = nested_reference(names.clone(), ops);
        let text = reference.repeat(copies);
        let lookup = |n: &str| match n {
            "V0" => Some("zero".to_owned()),
            "V1" => Some(String::new()),
            _ => None,
        };
        match expand::expand(&text, &lookup) {
            Ok(out) => prop_assert!(out.len() <= expand::MAX_EXPANSION),
            Err(e) => prop_assert!(
                e.0.contains("nested over 64 deep") || e.0.contains("more than 131072 bytes"),
                "{}",
                e.0
            ),
        }
        // As a Dockerfile, with its own ENV, the same holds.
        let dockerfile = format!("FROM a\nENV V0=zero V1=\nENV B={text}\nCMD b\n");
        let _ = dockerfile::lint_in("Dockerfile", &dockerfile, &BTreeMap::<String, String>::new());
    }

    /// Scripts of shell syntax soup (quotes, heredocs, substitutions,
    /// separators, long blank runs): split, analyzed and judged for every
    /// shell without a panic.
    #[test]
    fn shell_soup_is_read_without_panics(
        parts in prop::collection::vec(prop::sample::select(vec![
            "app", " ", "  \t ", "'", "\"", "`", "$(", ")", "${A", "}", "<<EOF\n", "EOF\n", "&&", "||",
            "|", "&", ";", "\n", "#", "\\\n", "exec ", ". ./x.sh", "f() {", "trap 'x' TERM;",
            "2>&1", ">log", "if true; then", "fi",
        ]), 0..600),
        blanks in 0usize..5000,
    ) {
        let script = parts.concat() + &" ".repeat(blanks) + "app";
        let _ = lameduck_lint::shell::commands(&script);
        let _ = lameduck_lint::script::analyze(&script);
        for image in ["debian", "alpine", "centos:7", "gcr.io/distroless/static", "example/x"] {
            let _ = lameduck_lint::forks::verdict(&lameduck_lint::forks::ShellOf::of_image(image), &script);
        }
        let json = serde_json::Value::String(script.clone()).to_string();
        let dockerfile = format!("FROM debian\nCMD {}\nENTRYPOINT [\"sh\", \"-c\", {json}]\n", script.replace('\n', " "));
        let _ = dockerfile::lint("Dockerfile", &dockerfile);
    }

    /// Streams of many documents and large ones: each document is linted
    /// on its own; the stream's errors name a place.
    #[test]
    fn streams_of_many_and_large_documents(
        docs in 1usize..120,
        items in 0usize..800,
        cut in any::<prop::sample::Index>(),
    ) {
        let big = format!(
            "kind: ConfigMap\ndata:\n{}",
            (0..items).map(|i| format!("  k{i}: v{i}\n")).collect::<String>()
        );
        let pod = "kind: Pod\nspec:\n  containers:\n    - name: web\n      ports: [{containerPort: 80}]\n";
        let stream: String = (0..docs)
            .map(|i| if i % 7 == 0 { big.clone() } else { pod.to_owned() })
            .collect::<Vec<_>>()
            .join("---\n");
        let parsed = yaml::documents(stream.chars()).count();
        prop_assert_eq!(parsed, docs);
        let found = manifest::lint("s.yaml", &stream).expect("valid");
        let pods = (0..docs).filter(|i| i % 7 != 0).count();
        prop_assert_eq!(found.len(), pods);
        // Cut anywhere: findings or an error, never a panic.
        let at = cut.index(stream.len() + 1);
        if let Some(prefix) = stream.get(..at) {
            let _ = manifest::lint("s.yaml", prefix);
        }
    }
}
