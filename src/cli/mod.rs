//! The `mediagate` command line: `run`, `reload`, `check`, `validate`, `quarantine`, `health`,
//! `emulate`.
//!
//! **May use:** everything. mediagate owns its CLI (clap): pingora's own flags are not exposed,
//! and its `Opt` is built in [`run`].

mod health;
mod http;
mod quarantine;
mod reload;
mod run;
mod validate;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config;
use crate::emulator::EmulatorSettings;
use std::time::Duration;

/// `mediagate --version`: the crate's version and the commit it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("MEDIAGATE_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "mediagate",
    version = VERSION,
    about = "A validating gateway for the Streaming Media Collection API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway (and the emulator when the file has an `[emulator]` section).
    Run {
        /// Configuration file.
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Take over the listening sockets of a running instance (zero-downtime upgrade): start
        /// this first, then send SIGQUIT to the old process.
        #[arg(long)]
        upgrade: bool,
        /// Once every listener accepts, write their addresses here as JSON
        /// (`{"gateway": "127.0.0.1:8080", "admin": ..., "emulator": ...}`): the ports the
        /// kernel chose when the configuration says port 0.
        #[arg(long)]
        ready_file: Option<PathBuf>,
    },
    /// Apply a new configuration without dropping connections: check it; when only keys a
    /// running process can change differ, reload in process (SIGHUP: tracked sessions are
    /// kept); otherwise start a new process with --upgrade and hand the sockets over from the
    /// running one (read from pid_file). Says which path it took and why.
    Reload {
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
        /// Always start a new process (e.g. to run a new binary).
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate a configuration file without touching the network; exit 0 when it is valid.
    Check {
        #[arg(short, long, default_value = config::DEFAULT_PATH)]
        config: PathBuf,
    },
    /// Validate one request body offline; print {"valid", "errors", "warnings"}; exit 0 valid,
    /// 1 invalid, 2 usage error.
    Validate {
        /// Use the `[validation]` policies of this file (defaults otherwise).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The endpoint the body is sent to.
        #[arg(long, value_parser = ["sessions", "events", "downloaded"])]
        endpoint: String,
        /// The body: a file, or - (the default) for standard input.
        #[arg(default_value = "-")]
        file: String,
    },
    /// Probe the admin listener (exit 0 when it answers 200): a container HEALTHCHECK.
    Health {
        /// The admin listener's address.
        #[arg(long, default_value = "127.0.0.1:9090")]
        addr: String,
        /// The path to ask.
        #[arg(long, default_value = "/readyz")]
        path: String,
        /// Give up after this long.
        #[arg(long, default_value_t = 3)]
        timeout_seconds: u64,
    },
    /// What the gateway refused, kept in the quarantine spool: list, show, replay.
    Quarantine {
        #[command(subcommand)]
        action: quarantine::Action,
    },
    /// Run only the built-in emulator of the collection backend.
    Emulate {
        /// Address to listen on (port 0: any free port, see --ready-file).
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: String,
        /// Once listening, write `{"emulator": "ADDR"}` here.
        #[arg(long)]
        ready_file: Option<PathBuf>,
        /// Sessions with no event for this long answer 410.
        #[arg(long, default_value_t = 600)]
        idle_timeout_seconds: u64,
        /// Wait this long before answering each API request (for timeout tests).
        #[arg(long, default_value_t = 0)]
        response_delay_ms: u64,
        /// Answer with an absolute Location on this prefix (for Location tests).
        #[arg(long)]
        location_prefix: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            upgrade,
            ready_file,
        } => run::run(&config, upgrade, ready_file),
        Command::Check { config } => check(&config),
        Command::Reload { config, upgrade } => reload::reload(&config, upgrade),
        Command::Validate {
            config,
            endpoint,
            file,
        } => validate::validate(config.as_deref(), &endpoint, &file),
        Command::Quarantine { action } => quarantine::quarantine(action),
        Command::Health {
            addr,
            path,
            timeout_seconds,
        } => health::health(&addr, &path, Duration::from_secs(timeout_seconds)),
        Command::Emulate {
            listen,
            ready_file,
            idle_timeout_seconds,
            response_delay_ms,
            location_prefix,
        } => {
            let Ok(listen) = listen.parse() else {
                eprintln!(
                    "mediagate emulate: --listen {listen:?} is not an IP address with a port"
                );
                return ExitCode::from(2);
            };
            run::emulate(
                EmulatorSettings {
                    listen,
                    idle_timeout: Duration::from_secs(idle_timeout_seconds),
                    response_delay: Duration::from_millis(response_delay_ms),
                    location_prefix,
                    ..EmulatorSettings::default()
                },
                ready_file,
            )
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match config::load(path) {
        Ok(c) => {
            for w in config::warnings(&c) {
                eprintln!("mediagate: warning: {w}");
            }
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mediagate: {e}");
            ExitCode::FAILURE
        }
    }
}
