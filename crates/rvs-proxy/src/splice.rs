//! The copy-free relay: splice(2) moves data socket -> pipe -> socket inside the kernel, so bulk
//! streams never cross into userspace.
//!
//! No maintained crate wraps splice for tokio sockets, so the two system calls are made here
//! directly; this is the only module of rvs that uses `unsafe`, each block a single FFI call on
//! file descriptors this module owns or borrows for the call's duration. Pipes are pooled and a
//! connection holds one only while data is in flight, like the userspace relay's buffers.

#![allow(
    unsafe_code,
    reason = "splice(2) and pipe2(2) have no safe wrapper in our dependencies"
)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes asked of one splice call.
const CHUNK: usize = 1 << 20;
/// Pipes kept for reuse.
const KEEP: usize = 256;

/// A non-blocking pipe (read end, write end).
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two new descriptors into `fds`, which we then own.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // A larger pipe moves more per call; failure to grow it is harmless.
        // SAFETY: fcntl on a descriptor we own.
        let _ = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, CHUNK as libc::c_int) };
        Ok(Self { read, write })
    }
}

/// A pool of empty pipes.
#[derive(Debug, Default)]
pub struct Pipes {
    free: Mutex<Vec<Pipe>>,
}

impl Pipes {
    /// An empty pipe.
    ///
    /// # Errors
    /// When the system has no descriptors left.
    pub fn take(&self) -> io::Result<Pipe> {
        let pooled = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        pooled.map_or_else(Pipe::new, Ok)
    }

    /// Returns an empty pipe for reuse.
    pub fn give(&self, pipe: Pipe) {
        let mut free = self
            .free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if free.len() < KEEP {
            free.push(pipe);
        }
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    let flags = libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK;
    // SAFETY: splice between two descriptors that are open for the call's duration; no
    // userspace memory is touched.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            flags,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Moves what the socket has ready into the pipe: `Ok(0)` at end of stream,
/// `WouldBlock` when nothing is ready.
///
/// # Errors
/// The socket's error, or `WouldBlock`.
pub fn socket_to_pipe(from: &TcpStream, pipe: &Pipe) -> io::Result<usize> {
    from.try_io(Interest::READABLE, || {
        splice(from.as_raw_fd(), pipe.write.as_raw_fd(), CHUNK)
    })
}

/// Moves up to `len` bytes from the pipe to the socket.
///
/// # Errors
/// The socket's error, or `WouldBlock` when its send buffer is full.
pub fn pipe_to_socket(pipe: &Pipe, to: &TcpStream, len: usize) -> io::Result<usize> {
    to.try_io(Interest::WRITABLE, || {
        splice(pipe.read.as_raw_fd(), to.as_raw_fd(), len)
    })
}

/// Drains `len` bytes from the pipe into the socket, waiting for room as needed.
///
/// # Errors
/// The socket's error.
pub async fn drain(pipe: &Pipe, to: &TcpStream, mut len: usize) -> io::Result<()> {
    while len > 0 {
        to.writable().await?;
        match pipe_to_socket(pipe, to, len) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => len -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
