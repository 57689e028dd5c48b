//! The program's clock: jiffies scaled to CLOCK_MONOTONIC nanoseconds, so timestamps in the
//! maps compare with the clock rvs reads (connection ages for `-Lc`, the sweeper's expiry).
//!
//! The program reads jiffies rather than calling `bpf_ktime_get_coarse_ns`: the verifier
//! inlines `bpf_jiffies64` as one load, where the helper call cost 18 ns of the 94 an
//! established packet took (BPF_PROG_TEST_RUN, `examples/prog_cost.rs`). It needs two numbers
//! only the running kernel knows: the tick length (CONFIG_HZ, not exposed to user space) and
//! jiffies' offset from CLOCK_MONOTONIC. Both are measured here with a small program of the
//! same object (`rvs_clock`) that reports jiffies when run by BPF_PROG_TEST_RUN. On tickless
//! kernels (Debian's) jiffies are derived from the monotonic clock, so the offset stays put.

use aya::programs::{TestRun, TestRunOptions, Xdp};
use aya::Ebpf;
use std::sync::OnceLock;
use std::time::Duration;

/// The calibration program in the object.
const PROGRAM: &str = "rvs_clock";
/// The tick rates Linux is built with (CONFIG_HZ).
const KNOWN_HZ: [u32; 4] = [100, 250, 300, 1000];
/// How long the tick rate is measured over: enough to tell 250 Hz from 300 Hz with a tick of
/// error at either end.
const MEASURE: Duration = Duration::from_millis(100);

/// The program's clock: CLOCK_MONOTONIC ns = jiffies * `tick_ns` + `offset` (wrapping).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    pub tick_ns: u32,
    pub offset: u64,
}

/// Measures the clock with the object's `rvs_clock` program, which is unloaded afterwards.
/// The tick rate is measured once per process (it is the kernel's), the offset every time.
pub(crate) fn calibrate(ebpf: &mut Ebpf) -> Result<Clock, String> {
    let prog: &mut Xdp = ebpf
        .program_mut(PROGRAM)
        .ok_or_else(|| format!("{PROGRAM} is missing from the object"))?
        .try_into()
        .map_err(|e| format!("{PROGRAM}: {e}"))?;
    prog.load().map_err(|e| format!("load {PROGRAM}: {e}"))?;
    let clock = measure(prog);
    // Failing to unload leaves a program the kernel frees with the object: nothing to report.
    let _ = prog.unload();
    clock
}

fn measure(prog: &Xdp) -> Result<Clock, String> {
    static TICK_NS: OnceLock<u32> = OnceLock::new();
    let tick_ns = match TICK_NS.get() {
        Some(t) => *t,
        None => {
            let (j0, t0) = sample(prog)?;
            std::thread::sleep(MEASURE);
            let (j1, t1) = sample(prog)?;
            let hz = tick_rate(j1.wrapping_sub(j0), t1.saturating_sub(t0))?;
            *TICK_NS.get_or_init(|| 1_000_000_000 / hz)
        }
    };
    let (jiffies, now) = sample(prog)?;
    Ok(Clock {
        tick_ns,
        offset: now.wrapping_sub(jiffies.wrapping_mul(u64::from(tick_ns))),
    })
}

/// The kernel's tick rate from `ticks` counted over `ns`: the nearest of [`KNOWN_HZ`].
fn tick_rate(ticks: u64, ns: u64) -> Result<u32, String> {
    let measured = ticks as f64 * 1e9 / ns.max(1) as f64;
    let nearest = KNOWN_HZ
        .into_iter()
        .min_by(|a, b| {
            (measured - f64::from(*a))
                .abs()
                .total_cmp(&(measured - f64::from(*b)).abs())
        })
        .unwrap_or(1000);
    if (measured - f64::from(nearest)).abs() > f64::from(nearest) * 0.1 {
        return Err(format!(
            "the kernel's tick rate measured {measured:.0} Hz, none of {KNOWN_HZ:?}"
        ));
    }
    Ok(nearest)
}

/// One reading: jiffies, and CLOCK_MONOTONIC in ns halfway through the run that read them.
fn sample(prog: &Xdp) -> Result<(u64, u64), String> {
    let input = [0u8; 64];
    let mut output = [0u8; 64];
    let before = monotonic_ns();
    prog.test_run(TestRunOptions {
        data_in: Some(&input),
        data_out: Some(&mut output),
        ..TestRunOptions::default()
    })
    .map_err(|e| format!("run {PROGRAM}: {e}"))?;
    let after = monotonic_ns();
    let mut jiffies = [0u8; 8];
    jiffies.copy_from_slice(&output[..8]);
    Ok((u64::from_ne_bytes(jiffies), before + (after - before) / 2))
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of the program's timestamps.
pub(crate) fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::tick_rate;

    #[test]
    fn tick_rate_is_the_nearest_known_hz() {
        assert_eq!(tick_rate(25, 100_000_000), Ok(250));
        assert_eq!(tick_rate(26, 100_000_000), Ok(250));
        assert_eq!(tick_rate(29, 100_000_000), Ok(300));
        assert_eq!(tick_rate(101, 100_000_000), Ok(1000));
        assert_eq!(tick_rate(10, 100_000_000), Ok(100));
    }

    #[test]
    fn tick_rate_refuses_what_no_kernel_has() {
        let err = tick_rate(50, 100_000_000).unwrap_err();
        assert!(err.contains("500 Hz"), "{err}");
    }
}
