//! `augur`: predictive e-mail marketing from a shop's history exports.
//!
//! One binary, one subcommand per job; each subcommand lives in its own module under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// Scoring and serving allocate many small, short-lived vectors across threads; mimalloc's
/// per-thread free lists serve them faster than the system allocator (measured in the README).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(&args.global);
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", message(&err));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, each said once: the library errors already include their cause in
/// their own message (`path: reason`), so a cause repeated by the one before it is skipped.
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}
