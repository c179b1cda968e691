//! Several upstreams, session affinity, health checks, timeouts and the process lifecycle
//! (SIGTERM, reload/upgrade), all on loopback with real processes. Every load is bounded.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{request, sid_of, toml, Emulator, Gateway, HeldPort, Options, Response};

const SESSION_START: &[u8] = include_bytes!("fixtures/session-start.json");
const PING: &[u8] = include_bytes!("fixtures/ping.json");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn upstream(name: &str, url: &str, extra: &str) -> toml::Table {
    toml(&format!("name = \"{name}\"\nurl = \"{url}\"\nconnect_timeout_ms = 500\nread_timeout_ms = 2000\n{extra}"))
}

/// Health checks every 100 ms, two results to flip.
const FAST_HEALTH: &str = "[health_check]\ninterval_ms = 100\ntimeout_ms = 300\n";

fn start_session(gw: &Gateway) -> Response {
    request(gw.addr, "POST", "/api/v1/sessions", &[JSON], SESSION_START).expect("answer")
}

/// The upstream's own sid inside an outward one (`<token>~<sid>`).
fn inner(outward: &str) -> &str {
    outward.split_once('~').map_or(outward, |(_, s)| s)
}

#[test]
fn every_event_of_a_session_reaches_the_upstream_that_created_it() {
    let a = Emulator::start(&[]);
    let b = Emulator::start(&[]);
    let gw = Gateway::start(Options {
        upstreams: vec![upstream("a", &a.url(), ""), upstream("b", &b.url(), "")],
        ..Options::default()
    });
    let mut sids = Vec::new();
    for _ in 0..40 {
        let r = start_session(&gw);
        assert_eq!(r.status, 201, "{}", r.text());
        let outward = sid_of(r.header("location").unwrap()).to_owned();
        assert!(outward.contains('~'), "the owner is encoded: {outward}");
        assert!(outward
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._~-".contains(&c)));
        sids.push(outward);
    }
    for sid in &sids {
        for _ in 0..3 {
            let r = gw.post(&format!("/api/v1/sessions/{sid}/events"), PING);
            assert_eq!(r.status, 204, "{}", r.text());
        }
    }
    let (on_a, on_b) = (a.sessions(), b.sessions());
    assert_eq!(on_a.len() + on_b.len(), 40);
    assert!(
        on_a.len() >= 15 && on_b.len() >= 15,
        "round robin: {} / {}",
        on_a.len(),
        on_b.len()
    );
    for sid in &sids {
        let sid = inner(sid);
        let owner = if on_a.iter().any(|s| s == sid) {
            &a
        } else {
            &b
        };
        let seen = owner.session(sid).expect("the owner knows the session");
        assert_eq!(
            seen["events"].as_array().map(Vec::len),
            Some(4),
            "sessionStart + 3 pings on the owner"
        );
    }
}

#[test]
fn forged_tokens_get_404_and_plain_sids_go_to_the_first_upstream() {
    let a = Emulator::start(&[]);
    let b = Emulator::start(&[]);
    let gw = Gateway::start(Options {
        upstreams: vec![upstream("a", &a.url(), ""), upstream("b", &b.url(), "")],
        ..Options::default()
    });
    let sid = "5d41402abc4b2a76b9719d911017c592aa6cd1b2e3f40567890abcdef0123456";
    let r = gw.post(&format!("/api/v1/sessions/0badf00d~{sid}/events"), PING);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "unknown session");
    let r = gw.post("/api/v1/sessions/0badf00d~NOT-HEX/events", PING);
    assert_eq!(r.status, 404);
    // A sid handed out before a second upstream was added carries no token: the first upstream.
    let before = request(a.addr, "GET", "/_emulator/requests", &[], b"")
        .unwrap()
        .json()["count"]
        .as_u64();
    let r = gw.post(&format!("/api/v1/sessions/{sid}/events"), PING);
    assert_eq!(r.status, 404, "the emulator does not know it");
    let after = request(a.addr, "GET", "/_emulator/requests", &[], b"")
        .unwrap()
        .json()["count"]
        .as_u64();
    assert_eq!(after, before.map(|n| n + 1));
}

#[test]
fn a_dead_upstream_is_marked_unhealthy_skipped_and_taken_back_when_it_returns() {
    let a = Emulator::start(&[]);
    // b's port is held (refusing connections) until b starts on it.
    let b_port = HeldPort::new();
    let b_addr = b_port.addr;
    let gw = Gateway::start(Options {
        upstreams: vec![
            upstream("a", &a.url(), ""),
            upstream("b", &format!("http://{b_addr}"), ""),
        ],
        tables: toml(FAST_HEALTH),
        ..Options::default()
    });
    assert_eq!(
        gw.metric_when("mediagate_upstream_healthy{upstream=\"b\"}", |v| v == 0.0),
        0.0
    );
    assert_eq!(gw.metric("mediagate_upstream_healthy{upstream=\"a\"}"), 1.0);
    for _ in 0..10 {
        assert_eq!(start_session(&gw).status, 201);
    }
    let mut b = Emulator::start_on(b_addr, &[]);
    assert_eq!(
        gw.metric_when("mediagate_upstream_healthy{upstream=\"b\"}", |v| v == 1.0),
        1.0
    );
    for _ in 0..10 {
        assert_eq!(start_session(&gw).status, 201);
    }
    assert!(!b.sessions().is_empty(), "b takes session starts again");
    b.kill();
}

#[test]
fn with_two_upstreams_killing_one_under_load_fails_at_most_the_session_starts_it_held() {
    let a = Emulator::start(&[]);
    let mut b = Emulator::start(&[]);
    let gw = Arc::new(Gateway::start(Options {
        upstreams: vec![upstream("a", &a.url(), ""), upstream("b", &b.url(), "")],
        tables: toml(FAST_HEALTH),
        ..Options::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    const WORKERS: usize = 4;
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (gw, stop, ok, failed) = (gw.clone(), stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut conn = testkit::Conn::connect(gw.addr).unwrap();
                for _ in 0..5000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match conn.send("POST", "/api/v1/sessions", &[JSON], SESSION_START) {
                        Ok(r) if r.status == 201 => ok.fetch_add(1, Ordering::Relaxed),
                        // Written to b when it died: b may have processed it, so it is not
                        // sent again.
                        Ok(r) if r.status == 502 => failed.fetch_add(1, Ordering::Relaxed),
                        other => {
                            panic!(
                                "unexpected answer to a session start: {:?}",
                                other.map(|r| (r.status, r.text()))
                            )
                        }
                    };
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ok.load(Ordering::Relaxed) < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    b.kill();
    let killed_at = ok.load(Ordering::Relaxed);
    while ok.load(Ordering::Relaxed) < killed_at + 400 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        ok.load(Ordering::Relaxed) >= killed_at + 400,
        "load went on after the kill"
    );
    // Only requests already written to b when it died can fail (502): b may have read them,
    // and a request whose bytes were taken is never sent twice. Each client has at most one
    // request in flight, so at most one failure per client. Everything after the kill finds b's
    // pooled connections closed (checked before use) or its port refusing (nothing written:
    // moved to a).
    assert!(
        failed.load(Ordering::Relaxed) <= WORKERS,
        "{} session starts failed; gateway log:\n{}",
        failed.load(Ordering::Relaxed),
        gw.stderr()
    );
}

/// What a [`RudeUpstream`] does with each connection it accepts.
#[derive(Clone, Copy)]
enum Rudeness {
    /// Waits for the request's first bytes, then closes without reading them: the kernel
    /// answers with a reset, as for a connection in the backlog of a process being killed.
    ResetUnread,
    /// Reads the whole request, then closes without answering: it may have processed it.
    CloseAfterReading,
}

/// An upstream that never answers; counts the connections it accepted.
struct RudeUpstream {
    url: String,
    accepted: Arc<AtomicUsize>,
}

impl RudeUpstream {
    fn start(rudeness: Rudeness) -> RudeUpstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let mut first = [0u8; 1];
                if stream.peek(&mut first).is_err() {
                    continue;
                }
                if let Rudeness::CloseAfterReading = rudeness {
                    let _ = read_request(&mut stream);
                }
                drop(stream);
            }
        });
        RudeUpstream { url, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads one request (its head and Content-Length body); `None` when the connection ends first.
fn read_request(stream: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    while !request_is_whole(&seen) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
        }
    }
    Some(seen)
}

/// Whether `bytes` hold a whole request head and its Content-Length body.
fn request_is_whole(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    body.len() >= length
}

/// Two upstreams, the first rude, no active health checks (every connection the rude one
/// accepts is one made for a request).
fn gateway_with_rude_first(rude: &RudeUpstream, good: &Emulator) -> Gateway {
    Gateway::start(Options {
        upstreams: vec![
            upstream("rude", &rude.url, ""),
            upstream("good", &good.url(), ""),
        ],
        tables: toml("[health_check]\nkind = \"off\"\n"),
        ..Options::default()
    })
}

#[test]
fn a_session_start_reset_after_its_write_is_not_sent_again() {
    // The rude upstream resets each connection once the request's first bytes arrived. The
    // gateway cannot tell a reset of bytes nobody read from an upstream that read the request
    // and aborted, so once any byte was written the failure is final: 502, sent once.
    let rude = RudeUpstream::start(Rudeness::ResetUnread);
    let good = Emulator::start(&[]);
    let gw = gateway_with_rude_first(&rude, &good);
    let (mut created, mut failed) = (0, 0);
    for _ in 0..6 {
        let r = start_session(&gw);
        match r.status {
            201 => created += 1,
            502 => failed += 1,
            other => panic!("unexpected {other}: {}\n{}", r.text(), gw.stderr()),
        }
    }
    assert!(
        failed >= 1 && rude.accepted() >= 1,
        "the rude upstream was tried"
    );
    assert_eq!(
        good.sessions().len(),
        created,
        "a request written to the rude upstream was not sent to the good one as well"
    );
    assert!(
        gw.metric_when(
            "mediagate_upstream_errors_total{kind=\"reset\",upstream=\"rude\"}",
            |v| v >= 1.0
        ) >= 1.0
    );
}

#[test]
fn a_session_start_read_but_not_answered_is_not_sent_again() {
    let rude = RudeUpstream::start(Rudeness::CloseAfterReading);
    let good = Emulator::start(&[]);
    let gw = gateway_with_rude_first(&rude, &good);
    let mut created = 0;
    let mut failed = 0;
    for _ in 0..6 {
        let r = start_session(&gw);
        match r.status {
            201 => created += 1,
            502 => {
                assert_eq!(r.json()["message"], "the upstream could not be reached");
                failed += 1;
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(
        failed >= 1 && rude.accepted() >= 1,
        "the rude upstream got requests"
    );
    assert_eq!(
        good.sessions().len(),
        created,
        "a request the rude upstream read did not go to the good one as well"
    );
}

/// What a [`KeepAliveUpstream`] does on each connection after answering its first request.
#[derive(Clone, Copy)]
enum AfterFirst {
    /// A moment later it sends an unasked-for 408 and closes, as some servers do at their
    /// idle timeout; `KeepAliveUpstream::done` turns true once it has.
    LateBytesThenClose,
    /// It reads the next request whole, then closes without answering.
    ReadNextThenClose,
    /// It reads the next request whole, then resets the connection (an aborting upstream).
    ReadNextThenReset,
}

/// An upstream that answers the first request of each connection (201 with a Location for
/// POST, 200 for GET), then behaves as told; counts the requests it read.
struct KeepAliveUpstream {
    url: String,
    requests: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
}

impl KeepAliveUpstream {
    fn start(after: AfterFirst) -> KeepAliveUpstream {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (count, flag) = (requests.clone(), done.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (count, flag) = (count.clone(), flag.clone());
                std::thread::spawn(move || {
                    let read_request = |stream: &mut std::net::TcpStream| {
                        let request = read_request(stream)?;
                        count.fetch_add(1, Ordering::SeqCst);
                        Some(request)
                    };
                    let Some(first) = read_request(&mut stream) else {
                        return;
                    };
                    let answer: &[u8] = if first.starts_with(b"POST") {
                        b"HTTP/1.1 201 Created\r\nLocation: /api/v1/sessions/abc\r\nContent-Length: 0\r\n\r\n"
                    } else {
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                    };
                    if stream.write_all(answer).is_err() {
                        return;
                    }
                    match after {
                        AfterFirst::LateBytesThenClose => {
                            std::thread::sleep(Duration::from_millis(100));
                            let _ = stream.write_all(
                                b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                            );
                            let _ = stream.shutdown(std::net::Shutdown::Both);
                            flag.store(true, Ordering::SeqCst);
                        }
                        AfterFirst::ReadNextThenClose => {
                            let _ = read_request(&mut stream);
                        }
                        AfterFirst::ReadNextThenReset => {
                            let _ = read_request(&mut stream);
                            // SO_LINGER 0: the close sends a reset, not a FIN.
                            let _ =
                                socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                        }
                    }
                });
            }
        });
        KeepAliveUpstream {
            url,
            requests,
            done,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// One event loop: each loop keeps its own idle upstream connections, and these tests follow
/// one pooled connection from request to request.
fn gateway_in_front_of(up: &KeepAliveUpstream) -> Gateway {
    Gateway::start(Options {
        server: toml("threads = 1\n"),
        upstreams: vec![upstream("up", &up.url, "")],
        tables: toml("[health_check]\nkind = \"off\"\npassive_failures = 0\n"),
        ..Options::default()
    })
}

#[test]
fn a_pooled_connection_that_got_bytes_or_a_close_while_idle_is_not_used() {
    let up = KeepAliveUpstream::start(AfterFirst::LateBytesThenClose);
    let gw = gateway_in_front_of(&up);
    assert_eq!(start_session(&gw).status, 201);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !up.done.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(up.done.load(Ordering::SeqCst), "the upstream sent its 408");
    // The 408 was not this request's answer: the request goes on a new connection.
    let r = start_session(&gw);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        up.requests(),
        2,
        "each session start reached the upstream once"
    );
}

#[test]
fn a_post_read_on_a_pooled_connection_then_closed_is_not_sent_again_but_a_get_is() {
    let up = KeepAliveUpstream::start(AfterFirst::ReadNextThenClose);
    let gw = gateway_in_front_of(&up);
    assert_eq!(start_session(&gw).status, 201);
    // The upstream read this one and closed without answering: it may have opened a session.
    let r = start_session(&gw);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(up.requests(), 2, "the session start was not sent twice");
    // A GET may be sent again: once on the pooled connection, once on a new one.
    let get = || request(gw.addr, "GET", "/api/v1/schemas/ping", &[], b"").expect("answer");
    assert_eq!(get().status, 200);
    let before = up.requests();
    let r = get();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.requests(), before + 2);
}

#[test]
fn a_post_read_whole_then_reset_on_a_pooled_connection_is_not_sent_again() {
    // The upstream read the whole sessionStart, then reset the connection without an answer:
    // sending it again would open a second session.
    let up = KeepAliveUpstream::start(AfterFirst::ReadNextThenReset);
    let gw = gateway_in_front_of(&up);
    assert_eq!(start_session(&gw).status, 201);
    let r = start_session(&gw);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(up.requests(), 2, "the session start was sent once");
}

#[test]
fn a_lone_upstream_is_never_ejected() {
    let rude = RudeUpstream::start(Rudeness::CloseAfterReading);
    let gw = Gateway::start(Options {
        upstreams: vec![upstream("rude", &rude.url, "")],
        tables: toml("[health_check]\nkind = \"off\"\n"),
        ..Options::default()
    });
    // More failures than passive_failures (3): still sent to it (502), never 503.
    for _ in 0..5 {
        let r = start_session(&gw);
        assert_eq!(r.status, 502, "{}", r.text());
    }
    assert_eq!(rude.accepted(), 5);
}

#[test]
fn a_slow_upstream_gets_504_at_the_configured_timeout() {
    let slow = Emulator::start(&["--response-delay-ms", "3000"]);
    let gw = Gateway::start(Options {
        upstreams: vec![toml(&format!(
            "name = \"slow\"\nurl = \"{}\"\nread_timeout_ms = 300\n",
            slow.url()
        ))],
        ..Options::default()
    });
    let started = Instant::now();
    let r = start_session(&gw);
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(
        took < Duration::from_millis(2500),
        "answered after {took:?}, before the upstream"
    );
    assert_eq!(
        gw.metric_when(
            "mediagate_upstream_errors_total{kind=\"timeout\",upstream=\"slow\"}",
            |v| v >= 1.0
        ),
        1.0
    );
}

#[test]
fn no_healthy_upstream_means_503() {
    let dead = HeldPort::new();
    let gw = Gateway::start(Options {
        upstreams: vec![upstream("only", &dead.url(), "")],
        tables: toml(FAST_HEALTH),
        ..Options::default()
    });
    gw.metric_when("mediagate_upstream_healthy{upstream=\"only\"}", |v| {
        v == 0.0
    });
    let r = start_session(&gw);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["message"], "no healthy upstream");
}

#[test]
fn sigterm_stops_readiness_at_once_and_lets_in_flight_requests_finish() {
    let slow = Emulator::start(&["--response-delay-ms", "1000"]);
    let mut gw = Gateway::start(Options {
        upstreams: vec![upstream("slow", &slow.url(), "")],
        server: toml("grace_period_seconds = 3"),
        ..Options::default()
    });
    let addr = gw.addr;
    let in_flight = std::thread::spawn(move || {
        request(addr, "POST", "/api/v1/sessions", &[JSON], SESSION_START)
    });
    gw.metric_when("mediagate_inflight_requests", |v| v >= 1.0);
    let signalled = Instant::now();
    gw.terminate();
    // /readyz stops answering 200 (503, or a refused connection once the listener closes).
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match request(gw.admin, "GET", "/readyz", &[], b"") {
            Ok(r) if r.status == 200 => {}
            _ => break,
        }
        assert!(Instant::now() < deadline, "/readyz still 200 after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = in_flight
        .join()
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(r.status, 201);
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("the process exits");
    assert!(status.success() || status.code().is_some(), "{status:?}");
    let took = signalled.elapsed();
    assert!(
        took < Duration::from_secs(9),
        "exit took {took:?} (grace 3 s + runtime shutdown 1 s)"
    );
}

/// Sends session starts on fresh connections until told to stop; counts failures.
fn load(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..20_000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match request(addr, "POST", "/api/v1/sessions", &[JSON], SESSION_START) {
                Ok(r) if r.status == 201 => ok.fetch_add(1, Ordering::Relaxed),
                other => {
                    eprintln!("failed: {:?}", other.map(|r| r.status));
                    failed.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    })
}

/// Runs `mediagate reload`. Its output goes to files: the new gateway process inherits them, so
/// a pipe would never reach end-of-file while it runs.
fn reload(config: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let dir = config.parent().unwrap();
    let out = std::fs::File::create(dir.join("reload.out")).unwrap();
    let err = std::fs::File::create(dir.join("reload.err")).unwrap();
    let status = std::process::Command::new(testkit::binary())
        .args(["reload", "-c"])
        .arg(config)
        .args(extra)
        .stdout(out)
        .stderr(err)
        .status()
        .expect("run mediagate reload");
    let stderr = std::fs::read_to_string(dir.join("reload.err")).unwrap_or_default();
    (status.code(), stderr)
}

fn read_pid(gw: &Gateway) -> u32 {
    std::fs::read_to_string(gw.dir.join("pid"))
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn a_reload_under_load_fails_no_request_and_a_bad_config_changes_nothing() {
    let up = Emulator::start(&[]);
    let mut gw = Gateway::start(Options {
        upstreams: vec![upstream("up", &up.url(), "")],
        // The old process drains connections it accepted before closing its listeners.
        server: toml("grace_period_seconds = 2"),
        ..Options::default()
    });
    let old_pid = gw.pid();
    let deadline = Instant::now() + Duration::from_secs(5);
    while read_pid(&gw) != old_pid {
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(10));
    }

    // A configuration that fails `check` is refused and the running gateway keeps serving.
    let good = std::fs::read_to_string(gw.config_path()).unwrap();
    std::fs::write(gw.config_path(), format!("{good}\n[bogus]\nkey = 1\n")).unwrap();
    let (code, stderr) = reload(&gw.config_path(), &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("bogus"), "{stderr}");
    assert_eq!(start_session(&gw).status, 201);
    assert_eq!(read_pid(&gw), old_pid);

    // A good one is applied under load without failing a request.
    std::fs::write(gw.config_path(), &good).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..3)
        .map(|_| load(gw.addr, stop.clone(), ok.clone(), failed.clone()))
        .collect();
    while ok.load(Ordering::Relaxed) < 100 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The same file would be reloaded in process: --upgrade asks for the new process.
    let (code, stderr) = reload(&gw.config_path(), &["--upgrade"]);
    assert_eq!(code, Some(0), "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let new_pid = loop {
        let pid = read_pid(&gw);
        if pid != old_pid && pid != 0 {
            break pid;
        }
        assert!(Instant::now() < deadline, "the new process never took over");
        std::thread::sleep(Duration::from_millis(10));
    };
    // The old process hands over, drains and exits; the load keeps going through the new one.
    let old_exit = gw.wait_exit(Duration::from_secs(15));
    let after_handover = ok.load(Ordering::Relaxed);
    while ok.load(Ordering::Relaxed) < after_handover + 100 {
        assert!(
            Instant::now() < deadline + Duration::from_secs(15),
            "no progress after the reload"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    // SAFETY: signalling the process the reload started (not our child).
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &new_pid.to_string()])
        .status();
    assert!(old_exit.is_some(), "the old process did not exit");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "a request failed during the reload"
    );
}
