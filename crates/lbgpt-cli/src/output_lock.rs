//! One run per output file: an exclusive lock on the file, held while the run writes it.
//!
//! Two runs appending to one file would interleave their lines and each skip what the other
//! has not answered yet, so the second run is refused before it reads or truncates anything.
//! The lock is the operating system's advisory file lock (`flock` on Unix), released when the
//! file is closed, also when the process is killed.

use std::fs::{File, TryLockError};
use std::io;

/// Why the output file could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock: another run writes the file.
    Busy,
    /// Locking failed otherwise.
    Io(io::Error),
}

/// Whether the lock was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Held until `file` is closed.
    Held,
    /// The filesystem does not support locks; the run goes on unprotected.
    Unsupported,
}

/// Takes the exclusive lock on `file` without waiting.
pub fn lock(file: &File) -> Result<Lock, LockError> {
    match file.try_lock() {
        Ok(()) => Ok(Lock::Held),
        Err(TryLockError::WouldBlock) => Err(LockError::Busy),
        Err(TryLockError::Error(err)) if err.kind() == io::ErrorKind::Unsupported => {
            Ok(Lock::Unsupported)
        }
        Err(TryLockError::Error(err)) => Err(LockError::Io(err)),
    }
}

/// What the user is told when another run holds the lock on `name`.
pub fn busy_message(name: &str) -> String {
    format!(
        "another run is writing {name} (it holds the file's lock); wait for it to finish, or \
         choose another output file"
    )
}

/// The warning for a filesystem without locks.
pub fn unsupported_warning(name: &str) -> String {
    format!(
        "warning: {name} cannot be locked on its filesystem; make sure no other run writes to \
         it at the same time"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_handle_on_a_locked_file_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("out.jsonl");
        let first = File::create(&path).expect("created");
        match lock(&first) {
            Ok(Lock::Held) => {}
            Ok(Lock::Unsupported) => return, // Nothing to check without locks.
            Err(err) => panic!("the first lock: {err:?}"),
        }
        let second = File::options()
            .write(true)
            .open(&path)
            .expect("opened again");
        assert!(matches!(lock(&second), Err(LockError::Busy)));
        drop(first);
        assert!(matches!(lock(&second), Ok(Lock::Held)));
    }
}
