//! `mediagate run` and `mediagate emulate`: build pingora's server from our configuration.

use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::admin::{AdminApp, Readiness, ReadinessWatcher};
use crate::config::{self, Config};
use crate::emulator::{self, EmulatorSettings};
use crate::gateway::access_log::{AccessLog, Flusher};
use crate::gateway::health_check::HealthChecker;
use crate::gateway::listener::PlainListener;
use crate::gateway::pool::Pool;
use crate::gateway::service::GatewayApp;
use crate::gateway::Gateway;
use crate::metrics::Metrics;

pub fn run(path: &Path, upgrade: bool) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("mediagate: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&config.log_level);
    if !upgrade {
        // pingora retries a busy address for a few seconds and then panics in its service
        // threads; say it plainly and exit instead. (With --upgrade the old process holds them.)
        if let Err(e) = addresses_free(&config) {
            eprintln!("mediagate: {e}");
            return ExitCode::FAILURE;
        }
    }
    let metrics = match Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => {
            eprintln!("mediagate: cannot create metrics: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pool = match Pool::new(&config) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            eprintln!("mediagate: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut server = new_server(server_conf(&config), upgrade);

    let access_log = config.access_log.then(AccessLog::new);
    if let Some(log) = &access_log {
        server.add_service(background_service("access log", Flusher(log.clone())));
    }
    let gateway = Gateway::new(config.clone(), metrics.clone(), pool.clone(), access_log);
    let app = GatewayApp(Arc::new(gateway));
    match &config.server.tls {
        None => {
            let listener = PlainListener::new("mediagate gateway", config.server.listen, app);
            server.add_service(listener);
        }
        Some((cert, key)) => match tls_listener(&config, cert, key) {
            Ok(l) => {
                let mut service = Service::new("mediagate gateway".to_owned(), app);
                service.add_listener(l);
                server.add_service(service);
            }
            Err(e) => {
                eprintln!("mediagate: [server] tls_cert/tls_key: {e}");
                return ExitCode::FAILURE;
            }
        },
    }
    server.add_service(background_service(
        "health checks",
        HealthChecker {
            pool,
            metrics: metrics.clone(),
            settings: config.health.clone(),
        },
    ));

    let readiness = Readiness::new_ready();
    let mut admin = Service::new(
        "mediagate admin".to_owned(),
        AdminApp {
            metrics,
            readiness: readiness.clone(),
        },
    );
    admin.add_tcp(&config.admin_listen.to_string());
    server.add_service(admin);
    server.add_service(background_service("readiness", ReadinessWatcher(readiness)));

    if let Some(e) = &config.emulator {
        server.add_service(emulator::service(EmulatorSettings {
            listen: e.listen.to_string(),
            idle_timeout: e.idle_timeout,
            location_prefix: e.location_prefix.clone(),
            response_delay: e.response_delay,
            policies: config.validation.policies.clone(),
        }));
    }
    super::reload::write_pid_file(&config.server.pid_file);
    log::info!(
        "mediagate {} listening on {} (admin {}), upstreams: {}",
        env!("CARGO_PKG_VERSION"),
        config.server.listen,
        config.admin_listen,
        config
            .upstreams
            .iter()
            .map(|u| format!("{}={}", u.name, u.authority))
            .collect::<Vec<_>>()
            .join(", ")
    );
    server.run_forever()
}

pub fn emulate(settings: EmulatorSettings) -> ExitCode {
    if settings.listen.parse::<std::net::SocketAddr>().is_err() {
        eprintln!(
            "mediagate emulate: --listen {:?} is not an IP address with a port",
            settings.listen
        );
        return ExitCode::from(2);
    }
    init_logging("info");
    let conf = ServerConf {
        threads: 2,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(1),
        pid_file: "/tmp/mediagate-emulator.pid".into(),
        upgrade_sock: "/tmp/mediagate-emulator-upgrade.sock".into(),
        ..ServerConf::default()
    };
    let mut server = new_server(conf, false);
    log::info!("mediagate emulator listening on {}", settings.listen);
    server.add_service(emulator::service(settings));
    server.run_forever()
}

/// The players' TLS listener (a plain one is [`PlainListener`]). Unbuffered: the gateway's
/// connection loop reads into its own buffer and writes each answer in one write.
fn tls_listener(config: &Config, cert: &str, key: &str) -> pingora_error::Result<ListenerConfig> {
    Ok(ListenerConfig::tcp(config.server.listen.to_string())
        .l4_buffer(L4BufferSettings::unbuffered())
        .tls(TlsSettings::intermediate(cert, key)?))
}

/// Checks that every address the file listens on can be bound now.
fn addresses_free(config: &Config) -> Result<(), String> {
    let mut listens = vec![
        ("[server] listen", config.server.listen),
        ("[admin] listen", config.admin_listen),
    ];
    if let Some(e) = &config.emulator {
        listens.push(("[emulator] listen", e.listen));
    }
    for (key, addr) in listens {
        std::net::TcpListener::bind(addr)
            .map_err(|e| format!("{key}: cannot listen on {addr}: {e}"))?;
    }
    Ok(())
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
        upstream_keepalive_pool_size: 256,
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

fn init_logging(level: &str) {
    let env = env_logger::Env::default().default_filter_or(level);
    let _ = env_logger::Builder::from_env(env)
        .format_timestamp_millis()
        .try_init();
}
