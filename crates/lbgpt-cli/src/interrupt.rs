//! Ctrl-C (SIGINT) during a batch, counted: the first asks for a graceful stop, the second for
//! an immediate one. Once [`Interrupts::install`] ran, Ctrl-C no longer kills the process.

use std::io;

/// The stream of Ctrl-C presses.
pub struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    seen: u32,
}

impl Interrupts {
    /// Takes over Ctrl-C from now on.
    pub fn install() -> io::Result<Self> {
        Ok(Interrupts {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
            seen: 0,
        })
    }

    /// Waits for the next Ctrl-C; returns how many there were so far (1 for the first).
    pub async fn next(&mut self) -> u32 {
        #[cfg(unix)]
        {
            if self.signal.recv().await.is_none() {
                // The signal driver is gone (the runtime is shutting down): never again.
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        self.seen += 1;
        self.seen
    }
}
