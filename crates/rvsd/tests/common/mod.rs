//! Test harness: real rvsd processes on private sockets, and rvsadm run as `ipvsadm`.
//! Every process started here is stopped by PID when its guard drops, on failure too.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The rvsd binary under test.
pub fn rvsd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rvsd"))
}

/// The rvsadm binary, next to rvsd. Cargo builds it for this package's tests only when asked,
/// so it is (re)built here once per test process, which is quick when it is up to date.
pub fn rvsadm_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "rvsadm"])
                .status()
                .expect("cargo build");
            assert!(status.success(), "building rvsadm failed");
            rvsd_bin().with_file_name("rvsadm")
        })
        .clone()
}

/// A running rvsd with its own state directory and socket.
pub struct Rvsd {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub extra: Vec<String>,
    /// Environment variables rvsd gets.
    pub env: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl Rvsd {
    /// Starts rvsd with the `none` plane in a fresh directory, with extra arguments.
    pub fn start(extra: &[&str]) -> Self {
        let mut args = vec!["--dataplane", "none"];
        args.extend_from_slice(extra);
        Self::start_raw(&args)
    }

    /// Starts rvsd in a fresh directory with exactly these extra arguments.
    pub fn start_raw(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        let mut r = Self {
            child: None,
            socket: dir.join("rvsd.sock"),
            state_dir: dir.join("state"),
            dir,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            env: Vec::new(),
            _tmp: Some(tmp),
        };
        r.spawn();
        r
    }

    /// Starts (again) in the same directory; panics if it does not come up.
    pub fn spawn(&mut self) {
        let child = self
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rvsd");
        self.child = Some(child);
        self.wait_ready();
    }

    /// The command line rvsd is started with.
    pub fn command(&self) -> Command {
        let mut c = Command::new(rvsd_bin());
        c.arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--control")
            .arg(&self.socket)
            .args(&self.extra);
        c.env("RVS_LOG", "warn");
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let mut err = String::new();
                if let Some(mut e) = self.child.as_mut().and_then(|c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("rvsd exited with {status}: {err}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("rvsd did not come up on {}", self.socket.display());
    }

    /// Sends a signal to the rvsd we started (by its PID).
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it with SIGTERM and waits; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(s)) = c.try_wait() {
                return s.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }

    /// Runs `ipvsadm ARGS` (rvsadm through a symlink named ipvsadm) against this rvsd.
    pub fn ipvsadm(&self, args: &[&str]) -> Output {
        self.ipvsadm_stdin(args, b"")
    }

    /// Same, with stdin.
    pub fn ipvsadm_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        ipvsadm_at(&self.dir, &self.socket, args, stdin)
    }

    /// `ipvsadm -Sn` as text, asserting success.
    pub fn save(&self) -> String {
        let o = self.ipvsadm(&["-Sn"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    /// One raw HTTP request on the control socket: (status code, body).
    pub fn http(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        http_unix(&self.socket, method, path, body)
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs rvsadm as `ipvsadm` (a symlink in `dir`) with RVS_SOCKET set.
pub fn ipvsadm_at(dir: &Path, socket: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let link = dir.join("ipvsadm");
    if !link.exists() {
        std::os::unix::fs::symlink(rvsadm_bin(), &link).expect("symlink");
    }
    let mut child = Command::new(&link)
        .args(args)
        .env("RVS_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ipvsadm");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("ipvsadm output")
}

/// A minimal HTTP/1.1 exchange over a Unix socket, for malformed-request tests.
pub fn http_unix(socket: &Path, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: rvsd\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    http_raw(socket, &request)
}

/// Sends exactly `request` on the socket and reads the answer to its end: (status, body).
pub fn http_raw(socket: &Path, request: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // rvsd may answer (and close) before it read all of a request it refuses.
    let _ = s.write_all(request);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let code = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// stdout as text.
pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
