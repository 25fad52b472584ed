//! What the CLI's integration tests share: running the real `synod` binary and reading what it
//! printed.

#![allow(clippy::unwrap_used, dead_code)]

use std::process::{Command, Output};

/// Runs `synod args...` (the binary cargo built for this test).
pub fn synod(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synod"))
        .args(args)
        .output()
        .unwrap()
}

/// Its standard output.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Its standard error.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}
