//! Cost of the per-request path inside one shard, without I/O: parse-free dispatch of
//! GET and SET through `Shard::dispatch` and `take_output`, as the connection loop does,
//! in batches of 16. Prints nanoseconds per request (median of 7 runs).
//!
//!     taskset -c 1 cargo run --release -p corekv-shard --example dispatch_cost

use corekv_shard::command::{Commands, OwnedArgs};
use corekv_shard::{Config, Shard};

fn main() {
    let commands = Commands::global();
    let mut sh = Shard::new(0, Config::default(), commands);
    sh.state_mut().set_now(1);
    let conn = sh
        .state_mut()
        .connect("127.0.0.1:1".into(), "127.0.0.1:2".into(), 3);
    let set = OwnedArgs::from_slices(&["SET", "key:1", "0123456789abcdef0123456789abcdef"]);
    let get = OwnedArgs::from_slices(&["GET", "key:1"]);
    let mut out = Vec::new();
    let mut runs = Vec::new();
    for _ in 0..7 {
        let n = 2_000_000u64;
        let t = std::time::Instant::now();
        for i in 0..n / 16 {
            sh.state_mut().set_now(1 + i);
            for j in 0..16 {
                let args = if j % 4 == 0 { set.args() } else { get.args() };
                let _ = sh.dispatch(conn, args);
            }
            out.clear();
            sh.take_output(conn, &mut out);
        }
        runs.push(t.elapsed().as_nanos() as f64 / n as f64);
    }
    runs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "{:.1} ns per request (median of 7; runs {runs:.1?})",
        runs[3]
    );
}
