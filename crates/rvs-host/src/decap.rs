//! The real server's tunnel decapsulation: rvs's tc-BPF program (`bpf/rvs_tc_decap.bpf.c`) on
//! an interface's ingress strips IP-in-IP, IPv6-in-IPv6, GUE and GRE headers from packets for
//! the VIPs, because this kernel has no ipip module to do it. Detached when dropped.

use crate::{host_error, HostError};
use aya::programs::{SchedClassifier, TcAttachType};
use aya::Ebpf;
use rvs_bpf_abi as abi;
use std::net::IpAddr;

/// The compiled program (empty when rvs was built without clang).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/rvs_tc_decap.o"));

/// Why there is no program, as a clause that can follow a colon.
pub const MISSING_OBJECT: &str = "this rvs was built without clang and libbpf-dev \
     (apt-get install clang libbpf-dev, then rebuild)";

/// The program, attached; dropping it detaches it.
pub struct Decap {
    _ebpf: Ebpf,
}

impl Decap {
    /// Loads the program for `vips` (GUE on `gue_port` when given) and attaches it to the
    /// ingress of interface `dev`.
    ///
    /// # Errors
    /// When the program is missing, the kernel refuses it, or `dev` does not exist.
    pub fn attach(dev: &str, vips: &[IpAddr], gue_port: Option<u16>) -> Result<Self, HostError> {
        if OBJECT.is_empty() {
            return Err(host_error(
                "load the tunnel decapsulation program",
                MISSING_OBJECT,
            ));
        }
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| host_error("load rvs_tc_decap", e))?;
        {
            let map = ebpf
                .map_mut(abi::maps::VIPS)
                .ok_or_else(|| host_error("find map rvs_vips", "missing"))?;
            let mut set: aya::maps::HashMap<_, abi::VipKey, u8> =
                aya::maps::HashMap::try_from(map).map_err(|e| host_error("open rvs_vips", e))?;
            for vip in vips {
                let (addr, af) = abi::addr_of(*vip);
                let key = abi::VipKey {
                    addr,
                    af,
                    pad: [0; 3],
                };
                set.insert(key, 1, 0)
                    .map_err(|e| host_error("write rvs_vips", e))?;
            }
        }
        if let Some(port) = gue_port {
            let map = ebpf
                .map_mut(abi::maps::DECAP_CONFIG)
                .ok_or_else(|| host_error("find map rvs_decap_config", "missing"))?;
            let mut config: aya::maps::Array<_, abi::DecapConfig> = aya::maps::Array::try_from(map)
                .map_err(|e| host_error("open rvs_decap_config", e))?;
            let value = abi::DecapConfig {
                gue_port: port.to_be(),
                pad: 0,
            };
            config
                .set(0, value, 0)
                .map_err(|e| host_error("write rvs_decap_config", e))?;
        }
        let prog: &mut SchedClassifier = ebpf
            .program_mut("rvs_tc_decap")
            .ok_or_else(|| host_error("find rvs_tc_decap", "missing"))?
            .try_into()
            .map_err(|e| host_error("find rvs_tc_decap", e))?;
        prog.load()
            .map_err(|e| host_error("load rvs_tc_decap", e))?;
        prog.attach(dev, TcAttachType::Ingress)
            .map_err(|e| host_error(format!("attach rvs_tc_decap to {dev} ingress"), e))?;
        tracing::info!(interface = dev, ?gue_port, "tunnel decapsulation attached");
        Ok(Self { _ebpf: ebpf })
    }
}
