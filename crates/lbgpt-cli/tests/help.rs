//! `--help` of every command, compared with the snapshots committed under
//! `tests/snapshots/help/`. After changing a help text on purpose, rewrite them with
//!
//! ```sh
//! LBGPT_UPDATE_SNAPSHOTS=1 cargo test -p lbgpt-cli --test help
//! ```
//!
//! and review the diff. The binary runs with `COLUMNS=100` (the help wraps at that width) and
//! without a terminal (no colours), so the text is the same on every machine.

use std::path::PathBuf;
use std::process::Command;

/// Every command whose help is snapshotted, and its snapshot's file name.
const COMMANDS: &[(&[&str], &str)] = &[
    (&[], "lbgpt"),
    (&["run"], "lbgpt-run"),
    (&["sim"], "lbgpt-sim"),
    (&["demo"], "lbgpt-demo"),
    (&["config"], "lbgpt-config"),
    (&["config", "check"], "lbgpt-config-check"),
];

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/help")
}

fn help_of(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_lbgpt"))
        .args(args)
        .arg("--help")
        .env("COLUMNS", "100")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("lbgpt runs");
    assert_eq!(
        output.status.code(),
        Some(0),
        "lbgpt {args:?} --help: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stderr.is_empty(), "help goes to stdout only");
    String::from_utf8(output.stdout).expect("utf-8 help")
}

fn updating() -> bool {
    std::env::var("LBGPT_UPDATE_SNAPSHOTS").is_ok_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn every_help_matches_its_snapshot() {
    let dir = snapshot_dir();
    let mut mismatches = Vec::new();
    for (args, name) in COMMANDS {
        let help = help_of(args);
        let path = dir.join(format!("{name}.txt"));
        if updating() {
            std::fs::create_dir_all(&dir).expect("snapshot dir");
            std::fs::write(&path, &help).expect("snapshot written");
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!(
                "no snapshot {} ({err}); run with LBGPT_UPDATE_SNAPSHOTS=1 to write it",
                path.display()
            )
        });
        if help != expected {
            mismatches.push(format!(
                "--- {} (snapshot)\n{expected}\n+++ lbgpt {} --help (now)\n{help}",
                path.display(),
                args.join(" ")
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "help changed; if on purpose, rerun with LBGPT_UPDATE_SNAPSHOTS=1 and review:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn help_is_complete_for_every_command() {
    // Each command's help says what it does, gives examples and the exit status.
    for (args, _) in COMMANDS.iter().filter(|(args, _)| !args.is_empty()) {
        let help = help_of(args);
        assert!(help.contains("Usage: lbgpt"), "{args:?}: {help}");
        if *args != ["config"] {
            assert!(help.contains("Exit status"), "{args:?}: {help}");
            assert!(help.contains("Example"), "{args:?}: {help}");
        }
        assert!(
            help.lines().all(|line| line.chars().count() <= 100),
            "{args:?}: a line is wider than COLUMNS: {help}"
        );
    }
    let top = help_of(&[]);
    for needle in ["run", "sim", "demo", "config", "Exit status", "docs/cli.md"] {
        assert!(top.contains(needle), "{needle}: {top}");
    }
    let run = help_of(&["run"]);
    for needle in [
        "standard input",
        "lbgpt.toml",
        "--config",
        "--output",
        "docs/config.md",
    ] {
        assert!(run.contains(needle), "{needle}: {run}");
    }
}

#[test]
fn the_help_width_follows_columns() {
    let narrow = Command::new(env!("CARGO_BIN_EXE_lbgpt"))
        .args(["run", "--help"])
        .env("COLUMNS", "60")
        .output()
        .expect("lbgpt runs");
    let text = String::from_utf8_lossy(&narrow.stdout);
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(widest <= 60, "{text}");
    let wide = help_of(&["run"]);
    assert_ne!(text, wide, "COLUMNS=60 wraps differently from 100");
}
