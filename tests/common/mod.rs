//! Helpers shared by the end-to-end tests of the `coxlmm` binary.

use std::process::{Command, Output};

/// Runs the `coxlmm` binary built for this test with `args`.
pub fn coxlmm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coxlmm"))
        .args(args)
        .output()
        .expect("run coxlmm")
}

/// A process's stdout and stderr, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
