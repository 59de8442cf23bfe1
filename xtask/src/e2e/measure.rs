//! Runs a child process to its end and reports what it cost: wall time, user and system CPU
//! time, and peak resident memory, taken from the kernel's accounting of that child alone
//! (`wait4`), so that neither the simulator nor this process is counted.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What one child process cost.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// From spawning it to reaping it.
    pub wall: Duration,
    /// CPU time in user mode, all its threads.
    pub user: Duration,
    /// CPU time in the kernel on its behalf, all its threads.
    pub system: Duration,
    /// Its peak resident set size, in bytes.
    pub peak_rss: u64,
    /// Its exit status (`None` when a signal ended it).
    pub exit_code: Option<i32>,
}

impl Usage {
    /// User plus system CPU time.
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

/// Spawns `command` (standard input closed) and waits for it, returning its usage.
pub fn run(command: &mut Command) -> Result<Usage, String> {
    command.stdin(Stdio::null());
    let started = Instant::now();
    let child = command
        .spawn()
        .map_err(|err| format!("cannot start {:?}: {err}", command.get_program()))?;
    wait(child, started)
}

/// Waits for `child`, spawned at `started`, and returns its usage. The child is reaped here
/// (by `wait4`), not through std: dropping a `Child` neither waits nor kills.
pub fn wait(child: Child, started: Instant) -> Result<Usage, String> {
    let pid = i32::try_from(child.id()).map_err(|_| "pid out of range".to_owned())?;
    drop(child);
    let (status, usage) = wait4(pid)?;
    let wall = started.elapsed();
    let exit_code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(Usage {
        wall,
        user: timeval(usage.ru_utime),
        system: timeval(usage.ru_stime),
        // Linux reports ru_maxrss in kilobytes.
        peak_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        exit_code,
    })
}

/// Waits for the child `pid` and returns its wait status and resource usage.
fn wait4(pid: i32) -> Result<(i32, libc::rusage), String> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        #[allow(unsafe_code)]
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `status` and `usage` are valid, writable and live for the call; `pid` is our
        // own child, not yet reaped.
        #[allow(unsafe_code)]
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            return Ok((status, usage));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waiting for process {pid} failed: {err}"));
        }
    }
}

/// Sends SIGINT (what Ctrl-C sends) to the child `pid`.
pub fn interrupt(pid: u32) -> Result<(), String> {
    let pid = i32::try_from(pid).map_err(|_| "pid out of range".to_owned())?;
    // SAFETY: kill has no memory-safety preconditions; `pid` is a child we started and have
    // not reaped, so it cannot name another process.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, libc::SIGINT) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot interrupt process {pid}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    let seconds = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(seconds) + Duration::from_micros(u64::from(micros))
}
