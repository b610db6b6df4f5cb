//! Placement over the wire: the shard map in INFO follows `--cpus`/`--placement`, shard i
//! runs on the i-th CPU of a fixed list, `--listen-shards` leaves the other shards serving
//! forwarded requests only, bad placement flags fail at start with a clear message, and
//! every shard's io_uring rings get the flags corekv-ring-flags adds.

mod common;

use common::Server;
use corekv_shard::slot::SlotMap;
use std::process::Command;

/// The `shardN:` lines of INFO shards.
fn shard_lines(srv: &Server) -> Vec<String> {
    let info = srv.client().call_str(&["INFO", "shards"]);
    info.lines()
        .filter(|l| l.starts_with("shard"))
        .map(str::to_string)
        .collect()
}

/// CPUs this test process may run on, ascending (from /proc/self/status).
fn allowed_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("")
        .trim()
        .to_string();
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

#[test]
fn a_fixed_list_puts_shard_i_on_the_ith_cpu() {
    let cpus = allowed_cpus();
    if cpus.len() < 2 {
        eprintln!("skipped: needs 2 CPUs, this process may use {cpus:?}");
        return;
    }
    // Reversed, so the mesh's own numbering (creation order) cannot pass by luck.
    let list = format!("{},{}", cpus[1], cpus[0]);
    let srv = Server::corekv_with(&[
        "--port".into(),
        "0".into(),
        "--cpus".into(),
        list,
        "--placement".into(),
        "fixed".into(),
    ]);
    let lines = shard_lines(&srv);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("shard0:cpu={},", cpus[1])),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("shard1:cpu={},", cpus[0])),
        "{lines:?}"
    );
    let info = srv.client().call_str(&["INFO", "shards"]);
    assert!(info.contains("placement:fixed\r\n"), "{info}");
    assert!(info.contains("numa_node:any\r\n"), "{info}");
}

#[test]
fn spread_and_numa_node_pin_every_shard() {
    let cpus = allowed_cpus();
    let srv = Server::corekv_with(&[
        "--port".into(),
        "0".into(),
        "--placement".into(),
        "spread".into(),
        "--numa-node".into(),
        "0".into(),
    ]);
    let info = srv.client().call_str(&["INFO", "shards"]);
    assert!(
        info.contains("placement:spread\r\nnuma_node:0\r\n"),
        "{info}"
    );
    let lines = shard_lines(&srv);
    assert_eq!(lines.len(), cpus.len(), "one shard per allowed CPU: {info}");
    for l in lines {
        assert!(l.contains(",node=0,"), "{l}");
        assert!(!l.contains("cpu=unpinned"), "{l}");
    }
}

#[test]
fn only_listening_shards_accept_and_the_others_still_own_their_keys() {
    let srv = Server::corekv(3, &["--listen-shards", "1"]);
    let map = SlotMap::new(3);
    let mut c = srv.client();
    let mut per_shard = [0usize; 3];
    for i in 0..60 {
        let k = format!("k{i}");
        per_shard[map.shard_of(k.as_bytes())] += 1;
        assert_eq!(c.call(&["SET", &k, &i.to_string()]), b"+OK\r\n");
    }
    for i in 0..60 {
        let k = format!("k{i}");
        assert_eq!(
            c.call_str(&["GET", &k]),
            format!("${}\r\n{i}\r\n", i.to_string().len())
        );
    }
    // Many connections: every one lands on shard 1.
    let others: Vec<_> = (0..20).map(|_| srv.client()).collect();
    let lines = shard_lines(&srv);
    for (s, l) in lines.iter().enumerate() {
        let listening = if s == 1 { "listening=1" } else { "listening=0" };
        assert!(l.contains(listening), "{l}");
        assert!(l.contains(&format!(",keys={},", per_shard[s])), "{l}");
        let conns = if s == 1 { others.len() + 2 } else { 0 };
        assert!(l.contains(&format!(",connections={conns},")), "{l}");
    }
}

#[test]
fn bad_placement_flags_fail_at_start() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_corekv"))
            .args(["--port", "0"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&["--numa-node", "4095"]).contains("no such NUMA node"));
    assert!(
        run(&["--shards", "2", "--no-pin", "--listen-shards", "2"]).contains("there are only 2")
    );
    assert!(run(&["--placement", "diagonal"]).contains("possible values: fixed, spread, pack"));
}

/// The start-up self-check of corekv-ring-flags: on this kernel (5.19+) every shard's
/// io_uring rings carry COOP_TASKRUN, pinned or not, and startup says so.
#[test]
fn every_shards_rings_get_coop_taskrun() {
    for srv in [
        Server::corekv_with(&["--port".into(), "0".into()]),
        Server::corekv(4, &[]),
    ] {
        assert!(
            srv.logged("io_uring: COOP_TASKRUN|TASKRUN_FLAG on") && srv.logged("every shard"),
            "{:#?}",
            srv.log_lines()
        );
        assert!(!srv.logged("did not get IORING_SETUP_COOP_TASKRUN"));
    }
}
