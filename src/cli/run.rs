//! `mediagate run` and `mediagate emulate`: pingora's server built from our configuration —
//! the listeners (bound here, so that a taken address is said plainly before anything starts),
//! the background services (health checks, readiness, log reopening) and, after the server
//! stops, the logs flushed within a bound.

use async_trait::async_trait;
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{RunArgs, Server, ShutdownWatch};
use pingora_core::services::background::{background_service, BackgroundService};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, Config};
use crate::emulator::{self, EmulatorSettings};
use crate::observe::access_log::AccessLog;
use crate::observe::admin::{AdminApp, Readiness, ReadinessWatcher};
use crate::observe::diagnostics;
use crate::observe::log_sink::{Destination, LogSink};
use crate::observe::metrics::Metrics;
use crate::pipeline::Gateway;
use crate::quarantine::Quarantine;
use crate::runtime::reload::ReloadOnSighup;
use crate::runtime::services::{HealthChecks, Sweeper};
use crate::runtime::{Live, Runtime};
use crate::server::bound::Bound;
use crate::server::listener::{self, Listener};

/// How long the logs may take to be written out at exit.
const LOG_CLOSE: Duration = Duration::from_secs(2);
/// Threads of the admin listener (scrapes and probes).
const SIDE_THREADS: usize = 1;

pub fn run(path: &Path, upgrade: bool, ready_file: Option<PathBuf>) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("mediagate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics = match Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("mediagate: cannot create metrics: {e}");
            return ExitCode::FAILURE;
        }
    };
    // With --upgrade the old process holds the addresses: the sockets are handed over later.
    let sockets = if upgrade {
        Sockets::default()
    } else {
        match Sockets::bind(&config) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("mediagate: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    crate::observe::allocations::init_from_env();
    diagnostics::init(&config.log.level, metrics.diagnostics_dropped.clone());
    // A reload reads the file again from wherever the process runs.
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let code = serve(config, metrics, sockets, upgrade, ready_file, path);
    diagnostics::flush(LOG_CLOSE);
    code
}

/// The listening sockets `run` binds before the server starts.
#[derive(Default)]
struct Sockets {
    gateway: Option<std::net::TcpListener>,
    admin: Option<std::net::TcpListener>,
    emulator: Option<std::net::TcpListener>,
}

impl Sockets {
    fn bind(config: &Config) -> Result<Sockets, String> {
        let bind = |key: &str, addr: SocketAddr| {
            listener::bind(addr).map_err(|e| format!("{key}: cannot listen on {addr}: {e}"))
        };
        Ok(Sockets {
            gateway: Some(bind("[server] listen", config.server.listen)?),
            admin: Some(bind("[admin] listen", config.admin_listen)?),
            emulator: match &config.emulator {
                Some(e) => Some(bind("[emulator] listen", e.listen)?),
                None => None,
            },
        })
    }
}

fn serve(
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    sockets: Sockets,
    upgrade: bool,
    ready_file: Option<PathBuf>,
    path: PathBuf,
) -> ExitCode {
    let quarantine = match &config.quarantine {
        None => None,
        Some(q) => match Quarantine::start(q, &metrics) {
            Ok(q) => Some(Arc::new(q)),
            Err(e) => {
                eprintln!("mediagate: [quarantine] dir: {}: {e}", q.dir.display());
                return ExitCode::FAILURE;
            }
        },
    };
    for w in crate::config::warnings(&config) {
        log::warn!("{w}");
    }
    let runtime = match Runtime::first(config.clone(), &metrics, quarantine.clone()) {
        Ok(r) => r,
        Err(e) => {
            log::error!("{e}");
            eprintln!("mediagate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let live = Arc::new(Live::new(runtime, metrics.clone(), path));
    let tls = match &config.server.tls {
        None => None,
        Some((cert, key)) => match TlsSettings::intermediate(cert, key) {
            Ok(settings) => Some(settings.build()),
            Err(e) => {
                eprintln!("mediagate: [server] tls_cert/tls_key: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let access_sink = match access_log_sink(&config, &metrics) {
        Ok(sink) => sink,
        Err(e) => {
            eprintln!("mediagate: [log] access_log_path: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut server = new_server(server_conf(&config), upgrade);
    let listeners = 2 + usize::from(config.emulator.is_some());
    let report = Bound::new(listeners, ready_file);

    let access_log = access_sink.clone().map(AccessLog::new);
    let gateway = Gateway::new(live.clone(), access_log);
    let mut gateway = Listener::new(
        "gateway",
        config.server.listen,
        sockets.gateway,
        Arc::new(gateway),
        report.clone(),
    );
    if let Some(acceptor) = tls {
        gateway = gateway.with_tls(acceptor);
    }
    if !config.server.work_stealing {
        gateway = gateway.with_event_loops(config.server.threads);
    }
    let gateway = gateway.with_connection_limit(
        config.server.max_connections,
        metrics.connections_open.clone(),
        metrics.load_shed.with_label_values(&["max_connections"]),
    );
    server.add_service(gateway);

    let readiness = Readiness::new_ready();
    let admin = AdminApp {
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        source: Some(live.clone()),
    };
    let admin = Listener::new(
        "admin",
        config.admin_listen,
        sockets.admin,
        Arc::new(admin),
        report.clone(),
    );
    server.add_service(admin.with_threads(SIDE_THREADS));
    server.add_service(background_service(
        "readiness",
        ReadinessWatcher {
            readiness,
            pid_file: config.server.pid_file.clone(),
        },
    ));
    server.add_service(background_service(
        "health checks",
        HealthChecks { live: live.clone() },
    ));
    server.add_service(background_service(
        "session tracker",
        Sweeper { live: live.clone() },
    ));
    server.add_service(background_service(
        "reload on SIGHUP",
        ReloadOnSighup {
            live: live.clone(),
            pid_file: config.server.pid_file.clone(),
        },
    ));
    if let Some(sink) = &access_sink {
        server.add_service(background_service(
            "log reopen",
            ReopenOnSigusr1(sink.clone()),
        ));
    }
    if let Some(e) = &config.emulator {
        let bound = sockets.emulator.as_ref().and_then(|s| s.local_addr().ok());
        let app = emulator::new_app(&EmulatorSettings {
            listen: e.listen,
            idle_timeout: e.idle_timeout,
            location_prefix: own_prefix(e.location_prefix.as_deref(), bound.unwrap_or(e.listen)),
            response_delay: e.response_delay,
            policies: config.validation.policies.clone(),
        });
        let emulator = Listener::new(
            "emulator",
            e.listen,
            sockets.emulator,
            Arc::new(app),
            report,
        );
        server.add_service(emulator);
    }
    super::reload::write_pid_file(&config.server.pid_file);
    log::info!(
        "mediagate {} starting, upstreams: {}",
        env!("CARGO_PKG_VERSION"),
        config
            .upstreams
            .iter()
            .map(|u| format!("{}={}", u.name, u.authority))
            .collect::<Vec<_>>()
            .join(", ")
    );
    diagnostics::buffered();
    server.run(RunArgs::default());
    diagnostics::flush(LOG_CLOSE);
    if let Some(sink) = access_sink {
        sink.close(LOG_CLOSE);
    }
    if let Some(q) = quarantine {
        q.close(LOG_CLOSE);
    }
    ExitCode::SUCCESS
}

fn access_log_sink(config: &Config, metrics: &Metrics) -> std::io::Result<Option<Arc<LogSink>>> {
    let log = &config.log;
    if !log.access_log {
        return Ok(None);
    }
    let destination = match &log.access_log_path {
        Some(path) => Destination::File(path.clone()),
        None => Destination::Stdout,
    };
    let sink = LogSink::start(
        "access log",
        destination,
        log.access_log_buffer_bytes,
        metrics.access_log_dropped.clone(),
    )?;
    Ok(Some(Arc::new(sink)))
}

/// Reopens the access log file on `SIGUSR1` (logrotate's `postrotate`).
struct ReopenOnSigusr1(Arc<LogSink>);

#[async_trait]
impl BackgroundService for ReopenOnSigusr1 {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut usr1 = match signal(SignalKind::user_defined1()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot watch SIGUSR1 (the access log will not be reopened): {e}");
                return;
            }
        };
        loop {
            tokio::select! {
                got = usr1.recv() => {
                    if got.is_none() {
                        return;
                    }
                    log::info!("SIGUSR1: reopening the access log");
                    self.0.reopen();
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

pub fn emulate(settings: EmulatorSettings, ready_file: Option<PathBuf>) -> ExitCode {
    let socket = match listener::bind(settings.listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "mediagate emulate: cannot listen on {}: {e}",
                settings.listen
            );
            return ExitCode::FAILURE;
        }
    };
    if let Ok(dropped) = prometheus::IntCounter::new("diagnostics_dropped", "-") {
        diagnostics::init("info", dropped);
    }
    let conf = ServerConf {
        threads: 2,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(1),
        pid_file: "/tmp/mediagate-emulator.pid".into(),
        upgrade_sock: "/tmp/mediagate-emulator-upgrade.sock".into(),
        ..ServerConf::default()
    };
    let mut server = new_server(conf, false);
    let report = Bound::new(1, ready_file);
    let bound = socket.local_addr().unwrap_or(settings.listen);
    let settings = EmulatorSettings {
        location_prefix: own_prefix(settings.location_prefix.as_deref(), bound),
        ..settings
    };
    let app = Arc::new(emulator::new_app(&settings));
    server.add_service(Listener::new(
        "emulator",
        settings.listen,
        Some(socket),
        app,
        report,
    ));
    diagnostics::buffered();
    server.run(RunArgs::default());
    diagnostics::flush(LOG_CLOSE);
    ExitCode::SUCCESS
}

/// The emulator's `location_prefix`, with `{listen}` standing for its own address (known only
/// once it is bound, with port 0).
fn own_prefix(prefix: Option<&str>, bound: SocketAddr) -> Option<String> {
    prefix.map(|p| p.replace("{listen}", &bound.to_string()))
}

fn server_conf(config: &Config) -> ServerConf {
    let s = &config.server;
    ServerConf {
        threads: s.threads,
        work_stealing: s.work_stealing,
        grace_period_seconds: Some(s.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(s.graceful_shutdown_timeout_seconds),
        pid_file: s.pid_file.clone(),
        upgrade_sock: s.upgrade_sock.clone(),
        ..ServerConf::default()
    }
}

fn new_server(conf: ServerConf, upgrade: bool) -> Server {
    let opt = Opt {
        upgrade,
        daemon: false,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();
    server
}
