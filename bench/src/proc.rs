//! Child processes of the bench: release binaries with a clean environment, wall time and
//! peak RSS (`/proc/PID/status` `VmHWM`, read while it runs).
//!
//! Not `wait4`'s `ru_maxrss`: Linux records the high-water mark of the memory a process
//! leaves at `execve` in that process's `maxrss`, and a spawned child runs in the
//! spawner's memory until it execs (posix_spawn's vfork, or fork's copy), so a child's
//! `ru_maxrss` is never below the bench's own peak so far. Every run before this one
//! read 34.1 MiB for `amictl cleanup --dry-run` at both 5,000 and 20,000 images, where
//! `VmHWM` reads ~21.5 MiB at 5,000.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Where the release binaries are (`BENCH_BIN_DIR`, default `target/release`).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("BENCH_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ami_sim::repo_root().join("target/release"))
}

pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let p = bin_dir().join(name);
    if !p.exists() {
        bail!(
            "{} is missing: `make bench` builds it (cargo build --release -p {name})",
            p.display()
        );
    }
    Ok(p)
}

/// A command with only the variables a Lambda function or amictl needs, pointed at the
/// emulator (never at a real account).
pub fn command(program: &Path, endpoint: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "3")
        // The deployment's seal key in the home region (made by `seal_spec` before seeding).
        .env("SEAL_KEY", "alias/ami-lifecycle-seal");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// How a finished child went.
#[derive(Debug, Clone)]
pub struct Finished {
    pub wall: Duration,
    pub peak_rss_kib: u64,
    pub success: bool,
    pub stdout: String,
    /// User + system CPU seconds of the child.
    pub cpu_seconds: f64,
}

/// Runs `cmd` to the end (stdout captured to a file, stderr discarded); wall time and
/// its peak RSS (`VmHWM`, see the module doc).
pub fn run(mut cmd: Command) -> anyhow::Result<Finished> {
    let out_path = std::env::temp_dir().join(format!(
        "bench-{}-{}.out",
        std::process::id(),
        rand_suffix()
    ));
    let out = std::fs::File::create(&out_path)?;
    let started = Instant::now();
    // BENCH_TRACE=FILE keeps the measured program's progress lines (stderr), each with
    // the seconds since it started: where a run's time goes, phase by phase.
    let trace = std::env::var_os("BENCH_TRACE");
    if trace.is_some() {
        cmd.env("AMI_LIFECYCLE_PROGRESS", "1");
    }
    let mut child = cmd
        .stdout(Stdio::from(out))
        .stderr(if trace.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .context("spawn")?;
    let tracer = match (trace, child.stderr.take()) {
        (Some(path), Some(stderr)) => Some(std::thread::spawn(move || {
            use std::io::{BufRead, Write};
            let Ok(mut file) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            else {
                return;
            };
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = writeln!(file, "{:9.3} {line}", started.elapsed().as_secs_f64());
            }
        })),
        _ => None,
    };
    let pid = child.id() as libc::pid_t;
    // The new program's own peak: VmHWM is its memory's high-water mark, which starts at
    // exec. Read every 10 ms until it exits (it only grows, so the last read is the
    // peak but for what the last 10 ms added).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kib) = hwm_kib(pid as u32) {
                    peak = peak.max(kib);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child; status and usage are valid for writes.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let polled_kib = watcher.join().unwrap_or(0);
    std::mem::forget(child); // reaped by wait4
    if let Some(t) = tracer {
        let _ = t.join();
    }
    if rc != pid {
        bail!("wait4({pid}) failed: {}", std::io::Error::last_os_error());
    }
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    Ok(Finished {
        wall,
        // A child too short-lived to be read once: ru_maxrss, an upper bound.
        peak_rss_kib: if polled_kib > 0 {
            polled_kib
        } else {
            usage.ru_maxrss as u64
        },
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout,
        cpu_seconds: tv(usage.ru_utime) + tv(usage.ru_stime),
    })
}

fn tv(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// `VmHWM` (peak resident set) of a running process, KiB.
pub fn vm_hwm_kib(child: &Child) -> Option<u64> {
    hwm_kib(child.id())
}

/// `VmHWM` of process `pid`, KiB (None once it has exited).
fn hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The pid of the emulator the benchmarks run against (set once by `main`; forked by the
/// zygote, so its command line does not name its port).
static EMULATOR_PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();

pub fn set_emulator_pid(pid: u32) {
    let _ = EMULATOR_PID.set(pid);
}

pub fn emulator_pid() -> Option<u32> {
    EMULATOR_PID.get().copied()
}

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / if hz > 0.0 { hz } else { 100.0 })
}
