//! The per-request path allocates nothing in the steady state: after a warm-up, GET,
//! SET over an existing key with a value of similar size (with and without a deadline),
//! INCR, MGET and a miss run
//! through `Shard::dispatch` and `take_output` (as the connection loop drives them)
//! without one heap allocation. Counted by a global allocator that counts per thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use corekv_shard::command::{Commands, OwnedArgs};
use corekv_shard::{Config, Outcome, Shard};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; counting touches only a thread-local Cell.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(Cell::get)
}

#[test]
fn steady_state_requests_allocate_nothing() {
    let commands = Commands::global();
    let mut sh = Shard::new(0, Config::default(), commands);
    sh.state_mut().set_now(1);
    let conn = sh
        .state_mut()
        .connect("127.0.0.1:1".into(), "127.0.0.1:2".into(), 3);
    let values = [
        "0123456789abcdef0123456789abcdef",
        "fedcba9876543210fedcba9876543210",
    ];
    let sets: Vec<OwnedArgs> = values
        .iter()
        .map(|v| OwnedArgs::from_slices(&["SET", "key:1", v]))
        .collect();
    let batch = [
        OwnedArgs::from_slices(&["GET", "key:1"]),
        OwnedArgs::from_slices(&["GET", "missing"]),
        OwnedArgs::from_slices(&["INCR", "counter"]),
        OwnedArgs::from_slices(&["MGET", "key:1", "counter", "missing"]),
        OwnedArgs::from_slices(&["EXISTS", "key:1"]),
        // A deadline given and taken away by SET: one layout of the block each time.
        OwnedArgs::from_slices(&["SET", "ttl:1", "0123456789abcdef", "EX", "100"]),
        OwnedArgs::from_slices(&["SET", "ttl:1", "fedcba9876543210"]),
    ];
    let mut out = Vec::with_capacity(64 * 1024);
    let mut round = |sh: &mut Shard, i: usize| {
        sh.state_mut().set_now(1 + i as u64);
        assert!(matches!(
            sh.dispatch(conn, sets[i % 2].args()),
            Outcome::Done
        ));
        for req in &batch {
            assert!(matches!(sh.dispatch(conn, req.args()), Outcome::Done));
        }
        out.clear();
        sh.take_output(conn, &mut out);
        assert!(
            out.starts_with(b"+OK\r\n$32\r\n"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    };
    for i in 0..1_000 {
        round(&mut sh, i);
    }
    let before = allocations();
    for i in 0..10_000 {
        round(&mut sh, i);
    }
    let per_request = (allocations() - before) as f64 / (10_000.0 * (1 + batch.len()) as f64);
    assert_eq!(
        allocations() - before,
        0,
        "{per_request:.3} allocations per request in the steady state"
    );
}
