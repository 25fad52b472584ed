//! Node processes of a testnet folder: start one detached (its own process group, logs to a file
//! in its home, pid in `node.pid`), check whether it runs, stop or kill it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The pid file in a node home.
pub fn pid_path(home: &Path) -> PathBuf {
    home.join("node.pid")
}

/// The log file in a node home.
pub fn log_path(home: &Path) -> PathBuf {
    home.join("node.log")
}

/// The pid of the node running on `home`, if one is: the pid file names a live process whose
/// command line is `synod node --home <home>` (so a reused pid is never signalled).
pub fn running_pid(home: &Path) -> Option<i32> {
    let pid = recorded_pid(home)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).to_string())
        .collect();
    let home_arg = home.canonicalize().ok()?;
    let ours = args.iter().any(|a| a == "node")
        && args
            .iter()
            .any(|a| Path::new(a).canonicalize().ok().as_deref() == Some(home_arg.as_path()));
    (ours && kill(Pid::from_raw(pid), None).is_ok()).then_some(pid)
}

/// Whether process `pid` is exiting but not gone: a SIGKILLed multi-threaded process shows its
/// leader as a zombie while its other threads are still on their way out (one stuck in a disk
/// write ends only when the write does), and until the last of them is gone its files stay
/// open: its listening sockets still take connections, and a new node on the same home would
/// find its ports taken.
pub fn exiting(pid: i32) -> bool {
    let zombie_leader = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.contains(") Z "));
    zombie_leader
        && std::fs::read_dir(format!("/proc/{pid}/task"))
            .is_ok_and(|tasks| tasks.flatten().count() > 1)
}

/// The pid the pid file in `home` names, whether or not that process still runs.
pub fn recorded_pid(home: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_path(home))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The resident memory of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`), if it runs.
pub fn rss_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Starts `synod node --home <home>` detached, logging to `node.log`. Returns its pid.
pub fn start(home: &Path) -> anyhow::Result<i32> {
    start_with(home, &[])
}

/// Starts `synod node --home <home> <extra>...` detached (extra flags such as a Byzantine
/// behaviour for experiments), logging to `node.log`. Returns its pid.
pub fn start_with(home: &Path, extra: &[&str]) -> anyhow::Result<i32> {
    if let Some(pid) = running_pid(home) {
        bail!(
            "a node is already running on {} (pid {pid})",
            home.display()
        );
    }
    // A node killed a moment ago may still be closing its files and ports.
    if let Some(old) = recorded_pid(home) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while exiting(old) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let exe = std::env::current_exe().context("locating the synod binary")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(home))
        .with_context(|| format!("opening {}", log_path(home).display()))?;
    let home_arg = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    let mut command = Command::new(exe);
    command
        .arg("node")
        .arg("--home")
        .arg(&home_arg)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command.spawn().context("starting a node")?;
    let pid = child.id() as i32;
    std::fs::write(pid_path(home), format!("{pid}\n"))?;
    // Right after fork the child still shows our command line; wait until it has exec'd, so
    // `running_pid` recognizes it (or it has already exited, which the caller reports).
    let deadline = Instant::now() + Duration::from_secs(5);
    while running_pid(home).is_none() && Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(pid)
}

/// Sends `signal` to the node on `home`; returns whether one was running.
pub fn signal(home: &Path, signal: Signal) -> anyhow::Result<bool> {
    match running_pid(home) {
        Some(pid) => {
            kill(Pid::from_raw(pid), signal).with_context(|| format!("signalling pid {pid}"))?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Stops the node on `home`: SIGTERM, then SIGKILL if it has not exited within `grace`.
pub fn stop(home: &Path, grace: Duration) -> anyhow::Result<bool> {
    if !signal(home, Signal::SIGTERM)? {
        return Ok(false);
    }
    let deadline = Instant::now() + grace;
    while running_pid(home).is_some() {
        if Instant::now() > deadline {
            signal(home, Signal::SIGKILL)?;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(pid_path(home));
    Ok(true)
}

/// The last `lines` lines of a node's log (to show why it failed to start).
pub fn log_tail(home: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log_path(home)).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
