//! One check of one address. Each kind in a module of its own; [`run`] picks it and bounds
//! the whole check by the spec's timeout.

pub mod http;
pub mod tcp;

use crate::outcome::{Code, Outcome};
use rvs_core::{CheckKind, CheckSpec};
use std::net::SocketAddr;
use std::time::Instant;

/// Checks `target` as `spec` says. Never takes longer than the spec's timeout (plus the
/// scheduler's slack): a check that hangs is dropped, and counts as a timeout of the layer it
/// reached.
pub async fn run(spec: &CheckSpec, target: SocketAddr) -> Outcome {
    let started = Instant::now();
    let (code, detail) = match spec.kind {
        CheckKind::Tcp => tcp::check(target, spec.timeout.duration()).await,
        CheckKind::Http | CheckKind::Https => http::check(spec, target).await,
        other => (
            Code::L4Con,
            format!("{other} checks are not built in this rvs"),
        ),
    };
    Outcome {
        code,
        detail,
        duration: started.elapsed(),
    }
}
