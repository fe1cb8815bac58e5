//! `mcp-scout config check FILE [--print]` and `mcp-scout config example`.

use std::io::Write;

use crate::cli::ConfigCommand;
use crate::config::{Config, ConfigError, EXAMPLE};

/// Run a `config` subcommand; errors exit 2.
pub fn run(cmd: &ConfigCommand) -> Result<(), ConfigError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ConfigCommand::Example => {
            let _ = out.write_all(EXAMPLE.as_bytes());
        }
        ConfigCommand::Check { file, print } => {
            let c = Config::load(file)?;
            let _ = writeln!(
                out,
                "{}: ok: {} job(s), API on {}, store {}",
                file.display(),
                c.jobs.len(),
                c.api.listen,
                c.store.path.display()
            );
            for j in &c.jobs {
                let _ = writeln!(out, "{}", j.describe());
            }
            for k in &c.sinks {
                let _ = writeln!(out, "{}", k.describe());
            }
            if let Some(k) = &c.kubernetes {
                let _ = writeln!(out, "{}", k.describe());
            }
            if *print {
                let _ = out.write_all(c.to_yaml().as_bytes());
            }
        }
    }
    Ok(())
}
