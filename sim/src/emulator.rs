//! [`Emulator`]: our extended moto as a child process on a free 127.0.0.1 port, stopped
//! when dropped. It derefs to the [`EmulatorClient`] that talks to it.
//!
//! The emulator is `.venv/emulator/bin/python infra/emulator/launcher.py` (installed by
//! `make emulator-venv`). Every test starts its own emulator, so tests never share state;
//! each is forked by one zygote per process ([`Emulator::start`]).

use std::io::{BufRead, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::client::EmulatorClient;

/// The repository root (this crate lives in `sim/`).
/// The `amictl` binary the workspace build made, next to the running test binary
/// (target/<profile>/deps/<test>-<hash> → target/<profile>/amictl); `AMICTL` names another.
/// `cargo test --workspace` (as `make test` runs) builds it.
pub fn amictl_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("AMICTL") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| anyhow::anyhow!("the test binary is not in target/<profile>/deps"))?;
    let path = profile_dir.join(format!("amictl{}", std::env::consts::EXE_SUFFIX));
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo build -p amictl` first (cargo test --workspace builds it)",
        path.display()
    );
    Ok(path)
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running emulator process; killed when dropped. Derefs to its [`EmulatorClient`].
pub struct Emulator {
    pid: u32,
    client: EmulatorClient,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        zygote_stop(self.pid);
    }
}

impl std::ops::Deref for Emulator {
    type Target = EmulatorClient;
    fn deref(&self) -> &EmulatorClient {
        &self.client
    }
}

impl Emulator {
    /// Starts an emulator and waits until it accepts connections.
    ///
    /// It is forked by this process's zygote (`launcher.py --zygote`, started on first
    /// use): importing moto and building the app take ~1 s of CPU, paid once per test
    /// process instead of once per test; a forked emulator has served nothing, like a
    /// fresh launcher, and is ready in milliseconds.
    pub fn start() -> anyhow::Result<Self> {
        let (port, pid) = zygote_start()?;
        Ok(Self {
            pid,
            client: EmulatorClient {
                port,
                endpoint: format!("http://127.0.0.1:{port}"),
            },
        })
    }

    /// The emulator's process id (the benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

/// How long the first emulator may take: the zygote's imports come first.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The launcher in `--zygote` mode, kept for the life of this process. When the process
/// ends its stdin closes, and the zygote kills the emulators still running and exits.
struct Zygote {
    child: Child,
    stdin: ChildStdin,
    /// (port, pid) from each `emulator ready on http://127.0.0.1:PORT pid PID` line.
    ready: Receiver<(u16, u32)>,
}

static ZYGOTE: Mutex<Option<Zygote>> = Mutex::new(None);

impl Zygote {
    fn spawn() -> anyhow::Result<Self> {
        let root = repo_root();
        let python = root.join(".venv/emulator/bin/python");
        if !python.exists() {
            bail!(
                "{} is missing: run `make emulator-venv` first (make test does)",
                python.display()
            );
        }
        let mut child = Command::new(&python)
            .arg(root.join("infra/emulator/launcher.py"))
            .arg("--zygote")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", python.display()))?;
        let stdin = child.stdin.take().context("zygote stdin")?;
        let stdout = child.stdout.take().context("zygote stdout")?;
        let (tx, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(started) = parse_ready(&line) {
                    if tx.send(started).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Self {
            child,
            stdin,
            ready,
        })
    }

    fn fork(&mut self) -> anyhow::Result<(u16, u32)> {
        self.stdin
            .write_all(b"start\n")
            .and_then(|()| self.stdin.flush())
            .context("asking the emulator zygote for an emulator")?;
        self.ready
            .recv_timeout(READY_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("the emulator zygote did not start an emulator: {e}"))
    }
}

/// `emulator ready on http://127.0.0.1:PORT pid PID` → (PORT, PID).
fn parse_ready(line: &str) -> Option<(u16, u32)> {
    let rest = line.split("emulator ready on http://127.0.0.1:").nth(1)?;
    let (port, pid) = rest.split_once(" pid ")?;
    Some((port.trim().parse().ok()?, pid.trim().parse().ok()?))
}

fn zygote_start() -> anyhow::Result<(u16, u32)> {
    let mut zygote = ZYGOTE.lock().unwrap_or_else(PoisonError::into_inner);
    let mut last_err = None;
    // A zygote that died or hung is replaced once (its emulators stop with it).
    for _ in 0..2 {
        if zygote.is_none() {
            *zygote = Some(Zygote::spawn()?);
        }
        let Some(z) = zygote.as_mut() else { continue };
        match z.fork() {
            Ok(started) => return Ok(started),
            Err(e) => {
                let _ = z.child.kill();
                let _ = z.child.wait();
                *zygote = None;
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("emulator did not start")))
}

fn zygote_stop(pid: u32) {
    let mut zygote = ZYGOTE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(z) = zygote.as_mut() {
        // A zygote that is gone has taken its emulators with it: nothing to stop.
        let _ = writeln!(z.stdin, "stop {pid}").and_then(|()| z.stdin.flush());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_give_port_and_pid() {
        assert_eq!(
            parse_ready("emulator ready on http://127.0.0.1:43127 pid 901"),
            Some((43127, 901))
        );
        assert_eq!(
            parse_ready("emulator ready on http://127.0.0.1:43127"),
            None
        );
        assert_eq!(parse_ready("some other output"), None);
    }
}
