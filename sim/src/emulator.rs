//! [`Emulator`]: our extended moto as a child process on a free 127.0.0.1 port, stopped
//! when dropped. It derefs to the [`EmulatorClient`] that talks to it.
//!
//! The emulator is `.venv/emulator/bin/python infra/emulator/launcher.py` (installed by
//! `make emulator-venv`). Every test starts its own emulator, so tests never share state.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
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
    child: Child,
    client: EmulatorClient,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl std::ops::Deref for Emulator {
    type Target = EmulatorClient;
    fn deref(&self) -> &EmulatorClient {
        &self.client
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Emulator {
    /// Starts the emulator and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        let root = repo_root();
        let python = root.join(".venv/emulator/bin/python");
        if !python.exists() {
            bail!(
                "{} is missing: run `make emulator-venv` first (make test does)",
                python.display()
            );
        }
        let mut last_err = None;
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..3 {
            let port = free_port()?;
            let mut child = Command::new(&python)
                .arg(root.join("infra/emulator/launcher.py"))
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting {}", python.display()))?;
            let stdout = child.stdout.take().context("launcher stdout")?;
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("emulator ready") {
                        let _ = tx.send(());
                    }
                }
            });
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(()) => {
                    return Ok(Self {
                        child,
                        client: EmulatorClient {
                            port,
                            endpoint: format!("http://127.0.0.1:{port}"),
                        },
                    });
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = Some(anyhow::anyhow!(
                        "emulator on port {port} did not get ready: {e}"
                    ));
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("emulator did not start")))
    }
}
