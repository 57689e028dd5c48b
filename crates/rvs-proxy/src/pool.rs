//! Relay buffers, shared: a connection holds one only while data is moving, so ten thousand
//! idle connections cost no buffer memory, and busy ones reuse buffers instead of allocating.

use std::sync::Mutex;

/// Size of one relay buffer.
pub const BUFFER: usize = 64 * 1024;
/// Buffers kept for reuse; more are freed when returned.
const KEEP: usize = 256;

/// A pool of relay buffers.
#[derive(Debug, Default)]
pub struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl Pool {
    /// A buffer of [`BUFFER`] bytes.
    pub fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| vec![0u8; BUFFER])
    }

    /// Returns a buffer for reuse.
    pub fn give(&self, buf: Vec<u8>) {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if free.len() < KEEP && buf.len() == BUFFER {
            free.push(buf);
        }
    }
}
