//! Runs one IPVS scheduler over simulated clients and prints its decisions and the share each
//! dest received.
//!
//! ```text
//! cargo run -p rvs-core --example simulate -- wrr 4,3,2 18
//! ```
//! Arguments: scheduler name (default wrr), comma-separated weights in kernel list order
//! (default 4,3,2), number of connections (default 18).

use rand::rngs::SmallRng;
use rand::SeedableRng;
use rvs_core::{
    Command, DestConfig, Flow, ForwardMethod, SchedulerKind, ServiceConfig, ServiceKey, Table,
    Timestamp,
};
use std::net::SocketAddr;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scheduler = args.first().map_or("wrr", String::as_str);
    let Ok(kind) = scheduler.parse::<SchedulerKind>() else {
        eprintln!("unknown scheduler {scheduler:?}; one of: rr wrr lc wlc sed nq lblc lblcr dh sh fo ovf mh twos");
        return ExitCode::from(2);
    };
    let weights: Result<Vec<u32>, _> = args
        .get(1)
        .map_or("4,3,2", String::as_str)
        .split(',')
        .map(str::parse)
        .collect();
    let Ok(weights) = weights else {
        eprintln!("weights must be comma-separated integers, e.g. 4,3,2");
        return ExitCode::from(2);
    };
    let count: usize = match args.get(2).map(|s| s.parse()) {
        None => 18,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("the connection count must be an integer");
            return ExitCode::from(2);
        }
    };

    let vip = ServiceKey::tcp("127.0.0.1:8080".parse().expect("literal"));
    let mut table = Table::new();
    let mut commands = vec![Command::AddService(
        ServiceConfig::new(vip).with_scheduler(kind),
    )];
    let dests: Vec<SocketAddr> = (0..weights.len())
        .map(|i| SocketAddr::from(([127, 0, 1, u8::try_from(i + 1).unwrap_or(255)], 80)))
        .collect();
    for (addr, w) in dests.iter().zip(&weights).rev() {
        let dest = DestConfig::new(*addr, ForwardMethod::Masq).with_weight(*w);
        commands.push(Command::AddDest { service: vip, dest });
    }
    if let Err(e) = table.apply(Command::batch(commands)) {
        eprintln!("{e}");
        return ExitCode::from(1);
    }

    let mut rng = SmallRng::seed_from_u64(7);
    let mut shares = vec![0usize; dests.len()];
    let service = table.service_mut(&vip).expect("just added");
    print!("{kind} with weights {weights:?}:");
    for n in 0..count {
        let client = SocketAddr::from(([127, 0, 2, u8::try_from(n % 250).unwrap_or(0) + 1], 40000));
        let flow = Flow {
            client,
            local: "127.0.0.1:8080".parse().expect("literal"),
        };
        match service.schedule(&flow, true, Timestamp::ZERO, &mut rng) {
            Ok(ticket) => {
                let i = dests.iter().position(|d| *d == ticket.dest).unwrap_or(0);
                shares[i] += 1;
                print!(" {}", ticket.dest.ip());
                service.release(ticket);
            }
            Err(e) => print!(" ({e})"),
        }
    }
    println!();
    for (d, s) in dests.iter().zip(&shares) {
        println!("  {d:<18} {s:>6} connections");
    }
    ExitCode::SUCCESS
}
