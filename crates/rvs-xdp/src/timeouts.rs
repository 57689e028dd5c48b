//! How long the program keeps an idle connection in each state (the `--set` timeouts and the
//! kernel's fixed ones), shared by the plane's readouts and the sweeper.

use rvs_bpf_abi as abi;

/// The idle timeout of a connection state in seconds, as the program applies it.
pub(crate) const fn state_timeout(config: &abi::Config, state: u8) -> u32 {
    match state {
        abi::state::ESTABLISHED => config.tcp_timeout,
        abi::state::UDP => config.udp_timeout,
        abi::state::CLOSE => 10,
        abi::state::FIN_WAIT => config.tcpfin_timeout,
        _ => config.syn_timeout,
    }
}
