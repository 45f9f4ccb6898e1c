//! Lab daemons that cannot outlive the test process.
//!
//! Every daemon runs in the foreground as our child with `PR_SET_PDEATHSIG`,
//! so a test process that ends (or is killed) takes its servers with it.
//! Linux delivers that signal when the *thread* that forked the child ends,
//! so all children are forked by one spawner thread that lives as long as
//! the process.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

type Request = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<Request>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("lab-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // SAFETY: prctl is async-signal-safe and touches no memory
                    // of the parent.
                    unsafe {
                        cmd.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
                // The sender lives in a static: this loop never ends, so the
                // thread (and PDEATHSIG's parent) lives as long as the process.
            })
            .expect("spawning the lab spawner thread");
        Mutex::new(tx)
    })
}

/// A foreground daemon, killed on drop and when the test process dies.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
}

impl Daemon {
    /// Start `cmd` (which must stay in the foreground) as a lab daemon.
    pub fn spawn(name: &str, cmd: Command) -> io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        spawner()
            .lock()
            .map_err(|_| io::Error::other("lab spawner poisoned"))?
            .send((cmd, tx))
            .map_err(|_| io::Error::other("lab spawner gone"))?;
        let child = rx
            .recv()
            .map_err(|_| io::Error::other("lab spawner gone"))??;
        Ok(Self {
            name: name.to_string(),
            child,
        })
    }

    /// Whether the daemon has exited (with its status).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The daemon's standard output, if it was piped (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Send SIGKILL and reap: a crash, as far as the daemon can tell.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send SIGTERM and wait up to `timeout` for the daemon to exit.
    pub fn terminate(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill(2) with a pid we own; no memory is touched.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
