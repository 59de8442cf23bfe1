//! Reads and parses the input of `lbgpt run` on a thread of its own, so that a slow input
//! (standard input fed by another program) never holds up the writing of results.
//!
//! The reader thread parses line after line ([`InputReader`]) into a bounded channel
//! ([`CHANNEL_LINES`] lines, so memory stays bounded whatever the input size). The facade pulls
//! requests through a plain iterator, which must answer at once; when no line is ready yet,
//! [`PumpReceiver::pull`] hands out a *wait ticket* instead of blocking. The ticket's
//! placeholder request waits (asynchronously, in [`PumpHandle::wait_for`]) until a line has
//! arrived after it was handed out, or the input ended, or the run was stopped; its result is
//! then dropped and the freed slot pulls the line.
//!
//! An arriving line releases *every* waiting ticket: results come out in input order, so a
//! wait still pending would hold up the results of every line pulled after it. The slots the
//! other tickets free get new tickets that wait for the next line.

use crate::endpoint::CliEndpoint;
use crate::input::{DuplicateCheck, InputLine, InputReader};
use std::io::{self, BufRead};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// How many parsed lines may wait between the reader thread and the requests.
pub const CHANNEL_LINES: usize = 128;

/// Decides, on the reader thread, whether a parsed line is sent (`true`) or skipped; an
/// error ends the input as a read error would.
pub type LineFilter<R> = Box<dyn FnMut(&InputLine<R>) -> io::Result<bool> + Send>;

/// State shared by the reader thread, the receiver and the waiting tickets.
#[derive(Debug, Default)]
struct Shared {
    /// Lines the reader has put into the channel.
    arrived: AtomicU64,
    /// Lines the filter skipped.
    skipped: AtomicU64,
    /// The reader finished: end of input or a read error.
    closed: AtomicBool,
    /// The run stopped reading (Ctrl-C): no line is taken any more.
    stopped: AtomicBool,
    /// Wakes waiting tickets when a line arrives, the input ends or the run stops.
    notify: Notify,
    /// The read error that ended the input early.
    io_error: Mutex<Option<io::Error>>,
}

/// The side of the pump the request iterator takes lines from.
#[derive(Debug)]
pub struct PumpReceiver<R> {
    lines: Receiver<InputLine<R>>,
    shared: Arc<Shared>,
    /// Lines taken from the channel.
    taken: u64,
}

/// What [`PumpReceiver::pull`] found.
#[derive(Debug)]
pub enum Pulled<R> {
    /// The next line.
    Line(InputLine<R>),
    /// No line yet: a ticket to wait for one with [`PumpHandle::wait_for`].
    Wait(u64),
    /// The input ended (or the run was stopped): nothing more will come.
    Ended,
}

/// A cloneable handle on the pump: waiting tickets, stopping, counters.
#[derive(Debug, Clone)]
pub struct PumpHandle {
    shared: Arc<Shared>,
}

/// Starts the reader thread over `source`, parsing requests of type `R` (checking duplicate
/// `custom_id`s or not, `duplicates`). `filter` decides which parsed lines are sent; the
/// others are counted as skipped.
pub fn start<R: CliEndpoint + Send + 'static>(
    source: Box<dyn BufRead + Send>,
    duplicates: DuplicateCheck,
    mut filter: LineFilter<R>,
) -> io::Result<(PumpReceiver<R>, PumpHandle)> {
    let shared = Arc::new(Shared::default());
    let (sender, lines) = sync_channel::<InputLine<R>>(CHANNEL_LINES);
    let thread_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("lbgpt-input".to_owned())
        .spawn(move || {
            let shared = thread_shared;
            let mut reader = InputReader::<_, R>::new(source, duplicates);
            let mut filter_error = None;
            for line in reader.by_ref() {
                if shared.stopped.load(Ordering::Acquire) {
                    break;
                }
                match filter(&line) {
                    Ok(true) => {}
                    Ok(false) => {
                        shared.skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Err(err) => {
                        filter_error = Some(err);
                        break;
                    }
                }
                if sender.send(line).is_err() {
                    // Nobody takes lines any more: the run is over.
                    break;
                }
                shared.arrived.fetch_add(1, Ordering::AcqRel);
                shared.notify.notify_waiters();
            }
            if let Some(err) = filter_error.or_else(|| reader.take_io_error()) {
                *shared
                    .io_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(err);
            }
            // Closed only after the last send, so a ticket released by `closed` finds every
            // line in the channel (or its end).
            drop(sender);
            shared.closed.store(true, Ordering::Release);
            shared.notify.notify_waiters();
        })?;
    let handle = PumpHandle {
        shared: Arc::clone(&shared),
    };
    Ok((
        PumpReceiver {
            lines,
            shared,
            taken: 0,
        },
        handle,
    ))
}

impl<R> PumpReceiver<R> {
    /// The next line if one is ready, else a wait ticket; [`Pulled::Ended`] once the input is
    /// exhausted or the run stopped. Never blocks.
    pub fn pull(&mut self) -> Pulled<R> {
        if self.shared.stopped.load(Ordering::Acquire) {
            return Pulled::Ended;
        }
        match self.lines.try_recv() {
            Ok(line) => {
                self.taken += 1;
                Pulled::Line(line)
            }
            Err(TryRecvError::Disconnected) => Pulled::Ended,
            // The ticket waits for a line beyond those taken so far.
            Err(TryRecvError::Empty) => Pulled::Wait(self.taken),
        }
    }
}

impl PumpHandle {
    /// Waits until a line beyond the first `ticket` lines has arrived, the input ended or the
    /// run stopped.
    pub async fn wait_for(&self, ticket: u64) {
        loop {
            let notified = self.shared.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a wake-up between check and await is not lost.
            notified.as_mut().enable();
            if self.released(ticket) {
                return;
            }
            notified.await;
        }
    }

    fn released(&self, ticket: u64) -> bool {
        self.shared.arrived.load(Ordering::Acquire) > ticket
            || self.shared.closed.load(Ordering::Acquire)
            || self.shared.stopped.load(Ordering::Acquire)
    }

    /// Stops reading: no further line is taken, and every waiting ticket is released.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.shared.notify.notify_waiters();
    }

    /// Lines the filter skipped so far.
    pub fn skipped(&self) -> u64 {
        self.shared.skipped.load(Ordering::Relaxed)
    }

    /// The read error that ended the input early, if any.
    pub fn take_io_error(&self) -> Option<io::Error> {
        self.shared
            .io_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    /// A chat request line of the batch input format with this custom_id.
    pub(crate) fn line(id: &str) -> String {
        format!(
            "{{\"custom_id\": \"{id}\", \"method\": \"POST\", \"url\": \"/v1/chat/completions\", \
             \"body\": {{\"model\": \"m\", \"messages\": [{{\"role\": \"user\", \"content\": \"x\"}}]}}}}\n"
        )
    }

    /// A reader fed through a channel, like a pipe from a slow program.
    struct SlowInput {
        chunks: std::sync::mpsc::Receiver<Vec<u8>>,
        pending: io::Cursor<Vec<u8>>,
    }

    impl io::Read for SlowInput {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            loop {
                let n = self.pending.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                match self.chunks.recv() {
                    Ok(chunk) => self.pending = io::Cursor::new(chunk),
                    Err(_) => return Ok(0),
                }
            }
        }
    }

    fn slow_input() -> (std::sync::mpsc::Sender<Vec<u8>>, Box<dyn BufRead + Send>) {
        let (feed, chunks) = std::sync::mpsc::channel();
        let input = SlowInput {
            chunks,
            pending: io::Cursor::new(Vec::new()),
        };
        (feed, Box::new(io::BufReader::new(input)))
    }

    type Chat = lbgpt_core::ChatRequest;

    fn start(
        source: Box<dyn BufRead + Send>,
        filter: LineFilter<Chat>,
    ) -> io::Result<(PumpReceiver<Chat>, PumpHandle)> {
        super::start(source, DuplicateCheck::On, filter)
    }

    async fn pull_line(receiver: &mut PumpReceiver<Chat>, handle: &PumpHandle) -> Pulled<Chat> {
        loop {
            match receiver.pull() {
                Pulled::Wait(ticket) => handle.wait_for(ticket).await,
                other => return other,
            }
        }
    }

    #[tokio::test]
    async fn a_file_comes_through_in_order_and_ends() {
        let text: String = (0..300).map(|i| line(&i.to_string())).collect();
        let (mut receiver, handle) = start(
            Box::new(io::Cursor::new(text.into_bytes())),
            Box::new(|_| Ok(true)),
        )
        .expect("starts");
        for i in 0..300 {
            match pull_line(&mut receiver, &handle).await {
                Pulled::Line(line) => assert_eq!(line.custom_id, Some(i.to_string())),
                other => panic!("line {i}: {other:?}"),
            }
        }
        assert!(matches!(
            pull_line(&mut receiver, &handle).await,
            Pulled::Ended
        ));
        assert!(handle.take_io_error().is_none());
    }

    #[tokio::test]
    async fn an_arriving_line_releases_every_ticket_and_new_ones_wait_for_the_next() {
        let (feed, input) = slow_input();
        let (mut receiver, handle) = start(input, Box::new(|_| Ok(true))).expect("starts");
        let spawn_wait = |ticket: u64| {
            let handle = handle.clone();
            tokio::spawn(async move { handle.wait_for(ticket).await })
        };
        // Nothing has arrived: three slots get three tickets, all waiting for line 1.
        let tickets: Vec<u64> = (0..3)
            .map(|_| match receiver.pull() {
                Pulled::Wait(ticket) => ticket,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(tickets, [0, 0, 0]);
        let waiters: Vec<_> = tickets.iter().map(|&t| spawn_wait(t)).collect();
        feed.send(line("a").into_bytes()).expect("send");
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(30), waiter)
                .await
                .expect("released by the line")
                .expect("joined");
        }
        match pull_line(&mut receiver, &handle).await {
            Pulled::Line(line) => assert_eq!(line.custom_id.as_deref(), Some("a")),
            other => panic!("{other:?}"),
        }
        // The line is taken: new tickets wait for the next one.
        let Pulled::Wait(ticket) = receiver.pull() else {
            panic!("a ticket")
        };
        assert_eq!(ticket, 1);
        let waiter = spawn_wait(ticket);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "no second line yet");
        // The end of input releases it.
        drop(feed);
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("released by the end of input")
            .expect("joined");
        assert!(matches!(
            pull_line(&mut receiver, &handle).await,
            Pulled::Ended
        ));
    }

    #[tokio::test]
    async fn stop_releases_tickets_and_ends_the_lines() {
        let (feed, input) = slow_input();
        let (mut receiver, handle) = start(input, Box::new(|_| Ok(true))).expect("starts");
        let Pulled::Wait(ticket) = receiver.pull() else {
            panic!("a ticket")
        };
        let waiter = {
            let handle = handle.clone();
            tokio::spawn(async move { handle.wait_for(ticket).await })
        };
        handle.stop();
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("released by stop")
            .expect("joined");
        feed.send(line("late").into_bytes()).expect("send");
        assert!(matches!(receiver.pull(), Pulled::Ended));
    }

    #[tokio::test]
    async fn the_filter_skips_and_counts() {
        let text: String = (0..10).map(|i| line(&i.to_string())).collect();
        let (mut receiver, handle) = start(
            Box::new(io::Cursor::new(text.into_bytes())),
            Box::new(|line| {
                Ok(line
                    .custom_id
                    .as_deref()
                    .is_some_and(|id| id != "3" && id != "7"))
            }),
        )
        .expect("starts");
        let mut ids = Vec::new();
        while let Pulled::Line(line) = pull_line(&mut receiver, &handle).await {
            ids.push(line.custom_id.expect("id"));
        }
        assert_eq!(ids, ["0", "1", "2", "4", "5", "6", "8", "9"]);
        assert_eq!(handle.skipped(), 2);
    }
}
