//! Data-plane selection (`--dataplane`) and the `none` plane.

use rvs_core::{Change, ConnectionEntry, DataPlane, DataPlaneError, ServiceStats};
use std::str::FromStr;

/// Which data plane rvsd drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneKind {
    /// Holds and serves the table; moves no traffic (validation, staging, tests).
    None,
    /// The userspace TCP/UDP proxy.
    Proxy,
    /// The XDP/eBPF packet plane.
    Xdp,
}

impl FromStr for PlaneKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Self::None),
            "proxy" => Ok(Self::Proxy),
            "xdp" => Ok(Self::Xdp),
            other => Err(format!(
                "no data plane is named {other:?}; use none, proxy or xdp"
            )),
        }
    }
}

/// Parses `--xdp-mode`: `auto` (native, else generic), `native` or `generic`.
///
/// # Errors
/// A sentence naming the accepted values.
pub fn xdp_mode(s: &str) -> Result<Option<rvs_xdp::XdpMode>, String> {
    match s {
        "auto" => Ok(None),
        "native" => Ok(Some(rvs_xdp::XdpMode::Driver)),
        "generic" => Ok(Some(rvs_xdp::XdpMode::Skb)),
        other => Err(format!(
            "no XDP mode is named {other:?}; use auto, native or generic"
        )),
    }
}

/// Builds the plane of a kind.
///
/// # Errors
/// A sentence saying why the plane cannot run here.
pub fn build(
    kind: PlaneKind,
    interfaces: &[String],
    xdp_mode: Option<rvs_xdp::XdpMode>,
    conn_table: u32,
    workers: usize,
) -> Result<Box<dyn DataPlane>, String> {
    match kind {
        PlaneKind::None => Ok(Box::new(NonePlane)),
        PlaneKind::Proxy => {
            let runtime = tokio::runtime::Handle::try_current()
                .map_err(|_| "the proxy data plane needs the async runtime".to_owned())?;
            Ok(Box::new(rvs_proxy::ProxyPlane::new(
                runtime,
                workers.max(1),
            )))
        }
        PlaneKind::Xdp => rvs_xdp::XdpPlane::for_interfaces(interfaces, xdp_mode, conn_table)
            .map(|p| Box::new(p) as Box<dyn DataPlane>)
            .map_err(|e| e.to_string()),
    }
}

/// The `none` plane: accepts every change ipvsadm accepts, moves no traffic, counts nothing.
#[derive(Debug, Default)]
pub struct NonePlane;

impl DataPlane for NonePlane {
    fn name(&self) -> &'static str {
        "none"
    }

    fn check(&self, _: &[Change]) -> Result<(), DataPlaneError> {
        Ok(())
    }

    fn apply(&mut self, _: &[Change]) -> Result<(), DataPlaneError> {
        Ok(())
    }

    fn stats(&self) -> Result<Vec<ServiceStats>, DataPlaneError> {
        Ok(Vec::new())
    }

    fn connections(&self) -> Result<Vec<ConnectionEntry>, DataPlaneError> {
        Ok(Vec::new())
    }
}
