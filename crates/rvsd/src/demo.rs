//! `rvsd demo`: a complete director on loopback with no root and no config file. Three small
//! built-in HTTP real servers, rvsd with the proxy plane, and a virtual service configured
//! through the control API like any other client would.

use crate::plane::PlaneKind;
use crate::server::{run_until, Options, ServeError};
use rvs_client::Client;
use rvs_core::{Command, DestConfig, ForwardMethod, SchedulerKind, ServiceConfig, ServiceKey};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the demo was asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The virtual service's address (default 127.0.0.1:8080).
    pub listen: SocketAddr,
    /// Where the demo keeps its socket and state (default a fresh directory under /tmp).
    pub dir: PathBuf,
    /// Stop after this long (default: run until Ctrl-C).
    pub duration: Option<Duration>,
}

/// Answers HTTP/1.1 requests (keep-alive) with a line naming the real server.
async fn real_server(listener: TcpListener, name: String) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            continue;
        };
        let name = name.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut have = 0;
            loop {
                let Ok(n) = s.read(&mut buf[have..]).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                have += n;
                while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    let close = String::from_utf8_lossy(&buf[..end])
                        .to_ascii_lowercase()
                        .contains("connection: close");
                    let body = format!("Hello from {name}\n");
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
                        body.len(),
                        if close { "Connection: close\r\n" } else { "" }
                    );
                    if s.write_all(head.as_bytes()).await.is_err()
                        || s.write_all(body.as_bytes()).await.is_err()
                    {
                        return;
                    }
                    buf.copy_within(end + 4..have, 0);
                    have -= end + 4;
                    if close {
                        return;
                    }
                }
                if have == buf.len() {
                    return;
                }
            }
        });
    }
}

async fn wait_for(socket: &std::path::Path) -> bool {
    for _ in 0..200 {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

/// Runs the demo until Ctrl-C (or the duration).
///
/// # Errors
/// When a real server, rvsd or the virtual service cannot be set up.
pub async fn demo(opts: DemoOptions) -> Result<(), ServeError> {
    let mut reals = Vec::new();
    for i in 1..=3u8 {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Listen {
                what: "cannot bind a demo real server on",
                path: addr.to_string(),
                source,
            })?;
        let local = l.local_addr().map_err(|source| ServeError::Listen {
            what: "cannot read the address of",
            path: addr.to_string(),
            source,
        })?;
        tokio::spawn(real_server(l, format!("real server {i} ({local})")));
        reals.push(local);
    }
    let control = opts.dir.join("rvsd.sock");
    let server = Options {
        config: None,
        state_dir: opts.dir.join("state"),
        control: control.clone(),
        dataplane: PlaneKind::Proxy,
        interfaces: Vec::new(),
        xdp_mode: None,
        api: None,
        api_token_file: None,
        workers: 2,
        conn_table: rvs_xdp::DEFAULT_CONN_TABLE,
    };
    // The demo starts from an empty table each time.
    let _ = std::fs::remove_file(opts.dir.join("state").join(crate::state::STATE_FILE));
    let duration = opts.duration;
    let stop = async move {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let rvsd = tokio::spawn(run_until(server, stop));
    if !wait_for(&control).await {
        return match rvsd.await {
            Ok(Err(e)) => Err(e),
            _ => Err(ServeError::Plane("rvsd did not come up".to_owned())),
        };
    }

    let vip = ServiceKey::tcp(opts.listen);
    let mut commands = vec![Command::AddService(
        ServiceConfig::new(vip).with_scheduler(SchedulerKind::Rr),
    )];
    for r in reals.iter().rev() {
        commands.push(Command::AddDest {
            service: vip,
            dest: DestConfig::new(*r, ForwardMethod::Masq),
        });
    }
    let socket = control.clone();
    let configured = tokio::task::spawn_blocking(move || {
        Client::new(socket)
            .map_err(|e| e.to_string())
            .and_then(|c| {
                c.apply_command(&Command::batch(commands))
                    .map_err(|e| format!("{e:?}"))
            })
    })
    .await
    .map_err(|e| ServeError::Plane(e.to_string()))?;
    if let Err(e) = configured {
        return Err(ServeError::Plane(format!(
            "the demo's virtual service was refused: {e}"
        )));
    }

    let sock = control.display();
    println!("rvs demo: a director on loopback with the userspace proxy plane (no root needed).\n");
    println!("  virtual service  TCP {}  rr, masquerading", opts.listen);
    for (i, r) in reals.iter().enumerate() {
        println!("  real server {}    {r}  (built-in HTTP)", i + 1);
    }
    println!("  control socket   {sock}\n");
    println!("Try, in another terminal:");
    println!(
        "  curl http://{}/                       # run it a few times: rr takes turns",
        opts.listen
    );
    println!("  RVS_SOCKET={sock} cargo run -q --release --bin rvsadm -- -Ln --stats");
    println!("  RVS_SOCKET={sock} cargo run -q --release --bin rvsadm -- -e -t {} -r {} -m -w 0   # quiesce one", opts.listen, reals[0]);
    match opts.duration {
        Some(d) => println!("\nThe demo stops after {} s.", d.as_secs()),
        None => println!("\nCtrl-C stops the demo."),
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();

    if let Some(d) = opts.duration {
        tokio::time::sleep(d).await;
        // Stop our own rvsd as SIGTERM would.
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
    }
    rvsd.await.map_err(|e| ServeError::Plane(e.to_string()))?
}
