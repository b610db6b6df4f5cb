//! queue-bench: a job queue on a Redis-protocol server, producers LPUSHing and workers
//! waiting in BRPOP, as Sidekiq- or Celery-style workers do.
//!
//! One executor (pinned with `--cpu`) runs `--producers` connections each keeping
//! `--pipeline` LPUSHes of one job in flight on one list, and `--consumers` connections
//! each looping on `BRPOP queue 1` (one request at a time, as a worker does). After a
//! warm-up it counts for `--duration` seconds and prints jobs pushed and jobs taken per
//! second, and the jobs the workers saw that were not a pushed job's payload (must be
//! 0). Server CPU is measured by the caller (scripts/queue-bench).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use corekv_protocol::frame::frame_len;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::{spawn_local, LocalExecutorBuilder, Placement};

#[derive(Parser, Debug)]
#[command(about = "LPUSH producers and BRPOP workers against a Redis-protocol server")]
struct Args {
    /// Server port on 127.0.0.1.
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Producer connections.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Worker connections, each in BRPOP.
    #[arg(long, default_value_t = 10)]
    consumers: usize,
    /// LPUSHes in flight per producer.
    #[arg(long, default_value_t = 16)]
    pipeline: usize,
    /// Job size in bytes.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Seconds to measure (after one second of warm-up).
    #[arg(long, default_value_t = 3)]
    duration: u64,
    /// The list's name.
    #[arg(long, default_value = "queue")]
    key: String,
    /// CPU to pin the executor to.
    #[arg(long)]
    cpu: Option<usize>,
}

struct Counters {
    pushed: Cell<u64>,
    taken: Cell<u64>,
    wrong: Cell<u64>,
    counting: Cell<bool>,
    stop: Cell<bool>,
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads until `want` complete replies are buffered; returns them (concatenated) or
/// `None` when the connection ends.
async fn replies(s: &mut TcpStream, buf: &mut Vec<u8>, want: usize) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::with_capacity(want);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while out.len() < want {
            match frame_len(buf) {
                Ok(Some(len)) => out.push(buf.drain(..len).collect()),
                _ => break,
            }
        }
        if out.len() == want {
            return Some(out);
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn producer(a: Rc<Args>, c: Rc<Counters>) {
    let mut s = TcpStream::connect(("127.0.0.1", a.port))
        .await
        .expect("connect");
    let job = vec![b'j'; a.size];
    let one = encode(&[b"LPUSH", a.key.as_bytes(), &job]);
    let mut buf = Vec::new();
    let mut wire = Vec::new();
    for _ in 0..a.pipeline {
        wire.extend_from_slice(&one);
    }
    if s.write_all(&wire).await.is_err() {
        return;
    }
    while !c.stop.get() {
        let Some(got) = replies(&mut s, &mut buf, 1).await else {
            return;
        };
        if c.counting.get() {
            c.pushed.set(c.pushed.get() + got.len() as u64);
        }
        if s.write_all(&one).await.is_err() {
            return;
        }
    }
}

async fn consumer(a: Rc<Args>, c: Rc<Counters>) {
    let mut s = TcpStream::connect(("127.0.0.1", a.port))
        .await
        .expect("connect");
    let req = encode(&[b"BRPOP", a.key.as_bytes(), b"1"]);
    let mut want = format!("*2\r\n${}\r\n{}\r\n${}\r\n", a.key.len(), a.key, a.size).into_bytes();
    want.extend(std::iter::repeat_n(b'j', a.size));
    want.extend_from_slice(b"\r\n");
    let mut buf = Vec::new();
    while !c.stop.get() {
        if s.write_all(&req).await.is_err() {
            return;
        }
        let Some(got) = replies(&mut s, &mut buf, 1).await else {
            return;
        };
        if got[0] == want {
            if c.counting.get() {
                c.taken.set(c.taken.get() + 1);
            }
        } else if got[0] != b"*-1\r\n" {
            c.wrong.set(c.wrong.get() + 1);
        }
    }
}

fn main() {
    let args = Args::parse();
    let placement = match args.cpu {
        Some(cpu) => Placement::Fixed(cpu),
        None => Placement::Unbound,
    };
    LocalExecutorBuilder::new(placement)
        .spawn(move || async move {
            // The rings get IORING_SETUP_COOP_TASKRUN through corekv-ring-flags' wrapper,
            // as corekv-bench's do.
            if !matches!(
                corekv_ring_flags::this_thread().verdict(),
                corekv_ring_flags::Verdict::InForce | corekv_ring_flags::Verdict::NotApplicable
            ) {
                eprintln!("queue-bench: io_uring rings without IORING_SETUP_COOP_TASKRUN");
            }
            let a = Rc::new(args);
            let c = Rc::new(Counters {
                pushed: Cell::new(0),
                taken: Cell::new(0),
                wrong: Cell::new(0),
                counting: Cell::new(false),
                stop: Cell::new(false),
            });
            let mut admin = TcpStream::connect(("127.0.0.1", a.port))
                .await
                .expect("connect");
            admin
                .write_all(&encode(&[b"DEL", a.key.as_bytes()]))
                .await
                .expect("del");
            let mut buf = Vec::new();
            replies(&mut admin, &mut buf, 1).await.expect("del reply");
            let mut tasks = Vec::new();
            for _ in 0..a.consumers {
                tasks.push(spawn_local(consumer(a.clone(), c.clone())).detach());
            }
            for _ in 0..a.producers {
                tasks.push(spawn_local(producer(a.clone(), c.clone())).detach());
            }
            glommio::timer::sleep(Duration::from_secs(1)).await;
            c.counting.set(true);
            let t0 = Instant::now();
            glommio::timer::sleep(Duration::from_secs(a.duration)).await;
            c.counting.set(false);
            let secs = t0.elapsed().as_secs_f64();
            c.stop.set(true);
            println!(
                "pushed_per_s={:.0} taken_per_s={:.0} consumers={} wrong={}",
                c.pushed.get() as f64 / secs,
                c.taken.get() as f64 / secs,
                a.consumers,
                c.wrong.get()
            );
            std::process::exit(0);
        })
        .expect("executor")
        .join()
        .expect("join");
}
