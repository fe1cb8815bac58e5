//! `<store>.lock`: an exclusive, non-blocking `flock` that keeps a second daemon off a store.
//!
//! The lock belongs to the open file description, so it is released when the writer drops
//! it or the process dies, even by SIGKILL: there is no stale lock to clean up. The file is
//! never deleted (deleting would let two processes lock two different inodes of one name);
//! it holds the holder's pid so the refusal can name it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::StoreError;

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockFile {
    // Kept open: closing the descriptor is what releases the lock.
    _file: File,
    path: PathBuf,
}

impl LockFile {
    /// The lock file of the store at `store`: the same name with `.lock` appended.
    pub fn path_for(store: &Path) -> PathBuf {
        let mut s = store.as_os_str().to_os_string();
        s.push(".lock");
        PathBuf::from(s)
    }

    /// Take the lock next to `store`, or say who holds it.
    pub fn acquire(store: &Path) -> Result<Self, StoreError> {
        let path = Self::path_for(store);
        let io_err = |source| StoreError::LockFile {
            path: path.clone(),
            source,
        };
        // No truncate here: the file may hold the current holder's pid.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(StoreError::InUse {
                    lock: path,
                    holder: text.trim().parse().ok(),
                });
            }
            return Err(io_err(err));
        }
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        writeln!(file, "{}", std::process::id()).map_err(io_err)?;
        file.flush().map_err(io_err)?;
        Ok(Self { _file: file, path })
    }

    /// Where the lock file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
