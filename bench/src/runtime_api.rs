//! A minimal local Lambda Runtime API (the 2018-06-01 interface a `provided.al2023`
//! bootstrap talks to), enough to run a function binary as Lambda does and time it:
//!
//! - `GET /2018-06-01/runtime/invocation/next` — long poll; answers with the queued event
//!   and the `Lambda-Runtime-*` headers (request id, deadline, function ARN, trace id);
//! - `POST /2018-06-01/runtime/invocation/<id>/response` and `.../error`;
//! - `POST /2018-06-01/runtime/init/error`.
//!
//! Every request is recorded with its arrival [`Instant`], so the bench reads "process
//! start → first `next`" (ready) and "event handed out → response" (handler time); a
//! `next` also with its wall-clock time, which the bench compares with the times a
//! function's start-up trace reports (`AMI_LIFECYCLE_STARTUP_TRACE`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What the runtime saw.
#[derive(Debug, Clone)]
pub enum Seen {
    /// A `next` request arrived (monotonic, and wall-clock for comparing with the times
    /// a function reports about itself).
    Next(Instant, SystemTime),
    /// An event was handed out (the answer to a `next`).
    Delivered(Instant),
    /// `response` or `error` for a request id, with the body.
    Done {
        at: Instant,
        ok: bool,
        body: String,
    },
    InitError(String),
}

/// A running Runtime API on 127.0.0.1 (a free port); one event at a time.
pub struct RuntimeApi {
    pub port: u16,
    events: mpsc::Sender<String>,
    seen: mpsc::Receiver<Seen>,
}

impl RuntimeApi {
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let (event_tx, event_rx) = mpsc::channel::<String>();
        let (seen_tx, seen_rx) = mpsc::channel::<Seen>();
        let event_rx = Arc::new(Mutex::new(event_rx));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let events = Arc::clone(&event_rx);
                let seen = seen_tx.clone();
                thread::spawn(move || {
                    let _ = serve(stream, &events, &seen);
                });
            }
        });
        Ok(Self {
            port,
            events: event_tx,
            seen: seen_rx,
        })
    }

    /// Queues an event for the next `next` request.
    pub fn push_event(&self, event: &serde_json::Value) {
        let _ = self.events.send(event.to_string());
    }

    /// The next thing the runtime saw, waiting up to `timeout`.
    pub fn wait(&self, timeout: Duration) -> Option<Seen> {
        self.seen.recv_timeout(timeout).ok()
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(String, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

/// One keep-alive connection: request after request until the client closes it.
fn serve(
    stream: TcpStream,
    events: &Mutex<mpsc::Receiver<String>>,
    seen: &mpsc::Sender<Seen>,
) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut counter = 0u64;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let arrived = Instant::now();
        let arrived_wall = SystemTime::now();
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        let body = String::from_utf8_lossy(&body).into_owned();
        let base = "/2018-06-01/runtime";
        if method == "GET" && path == format!("{base}/invocation/next") {
            let _ = seen.send(Seen::Next(arrived, arrived_wall));
            let event = {
                let rx = events.lock().unwrap_or_else(|p| p.into_inner());
                rx.recv()
            };
            let Ok(event) = event else { return Ok(()) };
            counter += 1;
            let request_id = format!("bench-{}-{counter}", std::process::id());
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                + Duration::from_secs(900);
            let headers = vec![
                (
                    "Lambda-Runtime-Aws-Request-Id".to_owned(),
                    request_id.clone(),
                ),
                (
                    "Lambda-Runtime-Deadline-Ms".to_owned(),
                    deadline.as_millis().to_string(),
                ),
                (
                    "Lambda-Runtime-Invoked-Function-Arn".to_owned(),
                    "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
                ),
                (
                    "Lambda-Runtime-Trace-Id".to_owned(),
                    "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
                ),
            ];
            let _ = seen.send(Seen::Delivered(Instant::now()));
            respond(&mut writer, "200 OK", &headers, &event)?;
        } else if method == "POST" && path.starts_with(&format!("{base}/invocation/")) {
            let rest = &path[format!("{base}/invocation/").len()..];
            let kind = rest.split_once('/').map(|(_, k)| k).unwrap_or("");
            let _ = seen.send(Seen::Done {
                at: arrived,
                ok: kind == "response",
                body,
            });
            respond(&mut writer, "202 Accepted", &[], "{\"status\":\"OK\"}")?;
        } else if method == "POST" && path == format!("{base}/init/error") {
            let _ = seen.send(Seen::InitError(body));
            respond(&mut writer, "202 Accepted", &[], "{\"status\":\"OK\"}")?;
        } else {
            respond(
                &mut writer,
                "404 Not Found",
                &[],
                "{\"errorMessage\":\"unknown path\"}",
            )?;
        }
    }
}
