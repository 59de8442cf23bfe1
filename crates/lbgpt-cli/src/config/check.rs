//! `lbgpt config check FILE`: validates a config and prints the members it would build.

use crate::cli::ConfigCheckArgs;
use crate::error::CliError;

/// Checks `args.file`; returns the exit status (0 valid, 2 otherwise).
pub fn run(args: &ConfigCheckArgs) -> Result<u8, CliError> {
    let config = super::Config::load(&args.file)?;
    println!(
        "{}: valid, {} provider(s)",
        args.file.display(),
        config.providers.len()
    );
    Ok(crate::EXIT_OK)
}
