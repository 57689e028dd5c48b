//! The XDP data plane: BPF programs in C (`bpf/`), compiled by build.rs with clang, loaded and
//! fed by Rust with aya. It forwards IPv4 and IPv6 TCP, UDP and SCTP services by direct
//! routing (the frame's destination MAC changes), tunnelling (IP-in-IP, IPv6-in-IPv6, GUE,
//! GRE) and NAT, at the driver, without the kernel's stack; next hops come from the kernel's
//! FIB, and frames leave by the interface it names.
//!
//! What is built so far, and what is not: see `docs/architecture.md`. In short, new flows are
//! scheduled from tables that Rust fills with the core's answers (rr, wrr, sh, dh, mh), by the
//! kernel's scans over per-dest connection counts kept by the program (lc, wlc, sed, nq, ovf,
//! fo, twos, lblc, lblcr); flows stick through an LRU connection table; fwmark services and
//! remote checksum offload are refused with a message.

#![deny(missing_docs)]

pub mod addr;
pub mod clock;
pub mod plane;
/// Neighbour lookups, next hops and managed entries: rvs-host's, which the plane uses.
pub use rvs_host::neighbors;
pub mod rates;
pub mod resolver;
pub mod ring;
pub mod slots;
pub mod sweep;
pub mod timeouts;

pub use aya::programs::XdpMode;
pub use plane::{DirectorAddr, XdpPlane};

/// The connection tables' size when none is given (flows per table).
pub const DEFAULT_CONN_TABLE: u32 = rvs_bpf_abi::CONN_TABLE;

/// The compiled BPF object (empty when rvs was built without clang).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rvs_xdp.o"));

/// The compiled object, or why there is none.
///
/// # Errors
/// A sentence saying how to get the xdp plane built.
pub fn object() -> Result<&'static [u8], String> {
    if OBJECT.is_empty() {
        return Err(MISSING_OBJECT.to_owned());
    }
    Ok(OBJECT)
}

/// Why there is no BPF object, as a clause that can follow a colon.
pub const MISSING_OBJECT: &str = "this rvs was built without clang and libbpf-dev \
     (apt-get install clang libbpf-dev, then rebuild)";
