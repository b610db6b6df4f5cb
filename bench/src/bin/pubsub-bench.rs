//! pubsub-bench: PUBLISH throughput and message delivery against a Redis-protocol server.
//!
//! One executor (pinned with `--cpu`) runs `--subscribers` connections subscribed to one
//! channel, each reading and counting the messages it receives, and `--publishers`
//! connections each keeping `--pipeline` PUBLISH commands in flight. After a warm-up it
//! counts for `--duration` seconds and prints publishes per second, messages delivered
//! per second, and the subscribers' count check (every PUBLISH's reply must equal the
//! number of subscribers). Server CPU is measured by the caller (scripts/pubsub-bench).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use corekv_protocol::frame::frame_len;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::{spawn_local, LocalExecutorBuilder, Placement};

#[derive(Parser, Debug)]
#[command(about = "PUBLISH throughput and delivery rate against a Redis-protocol server")]
struct Args {
    /// Server port on 127.0.0.1.
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Subscriber connections.
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Publisher connections.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// PUBLISH commands in flight per publisher.
    #[arg(long, default_value_t = 16)]
    pipeline: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Seconds to measure (after one second of warm-up).
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// CPU to pin the executor to.
    #[arg(long)]
    cpu: Option<usize>,
}

struct Counters {
    published: Cell<u64>,
    delivered: Cell<u64>,
    wrong_counts: Cell<u64>,
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

/// Reads frames from `stream` until stopped, calling `each` with every complete one.
async fn frames(stream: &mut TcpStream, c: &Counters, mut each: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; 256 * 1024];
    let (mut start, mut end) = (0, 0);
    while !c.stop.get() {
        if buf.len() - end < 16 * 1024 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
            if buf.len() - end < 16 * 1024 {
                buf.resize(buf.len() * 2, 0);
            }
        }
        let n = match stream.read(&mut buf[end..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        end += n;
        while let Ok(Some(len)) = frame_len(&buf[start..end]) {
            each(&buf[start..start + len]);
            start += len;
        }
    }
}

async fn subscriber(port: u16, c: Rc<Counters>, ready: Rc<Cell<usize>>) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(&encode(&[b"SUBSCRIBE", b"bench"]))
        .await
        .expect("subscribe");
    let mut confirmed = false;
    frames(&mut s, &c, |_| {
        if !confirmed {
            confirmed = true;
            ready.set(ready.get() + 1);
        } else if c.counting.get() {
            c.delivered.set(c.delivered.get() + 1);
        }
    })
    .await;
}

async fn publisher(port: u16, a: Rc<Args>, c: Rc<Counters>) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let payload = vec![b'm'; a.size];
    let one = encode(&[b"PUBLISH", b"bench", &payload]);
    let expected = format!(":{}\r\n", a.subscribers).into_bytes();
    let mut wire = Vec::new();
    for _ in 0..a.pipeline {
        wire.extend_from_slice(&one);
    }
    s.write_all(&wire).await.expect("publish");
    let mut buf = vec![0u8; 64 * 1024];
    let (mut start, mut end) = (0, 0);
    while !c.stop.get() {
        if buf.len() - end < 1024 {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = match s.read(&mut buf[end..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        end += n;
        let mut replies = 0;
        while let Ok(Some(len)) = frame_len(&buf[start..end]) {
            if buf[start..start + len] != expected[..] {
                c.wrong_counts.set(c.wrong_counts.get() + 1);
            }
            start += len;
            replies += 1;
        }
        if c.counting.get() {
            c.published.set(c.published.get() + replies);
        }
        // Keep `pipeline` in flight: one new PUBLISH per reply.
        let mut more = Vec::with_capacity(one.len() * replies as usize);
        for _ in 0..replies {
            more.extend_from_slice(&one);
        }
        if s.write_all(&more).await.is_err() {
            return;
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
                eprintln!("pubsub-bench: io_uring rings without IORING_SETUP_COOP_TASKRUN");
            }
            let a = Rc::new(args);
            let c = Rc::new(Counters {
                published: Cell::new(0),
                delivered: Cell::new(0),
                wrong_counts: Cell::new(0),
                counting: Cell::new(false),
                stop: Cell::new(false),
            });
            let ready = Rc::new(Cell::new(0));
            let mut tasks = Vec::new();
            for _ in 0..a.subscribers {
                tasks.push(spawn_local(subscriber(a.port, c.clone(), ready.clone())).detach());
            }
            while ready.get() < a.subscribers {
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
            for _ in 0..a.publishers {
                tasks.push(spawn_local(publisher(a.port, a.clone(), c.clone())).detach());
            }
            glommio::timer::sleep(Duration::from_secs(1)).await;
            c.counting.set(true);
            let t0 = Instant::now();
            glommio::timer::sleep(Duration::from_secs(a.duration)).await;
            c.counting.set(false);
            let secs = t0.elapsed().as_secs_f64();
            c.stop.set(true);
            println!(
                "publishes_per_s={:.0} delivered_per_s={:.0} subscribers={} wrong_counts={}",
                c.published.get() as f64 / secs,
                c.delivered.get() as f64 / secs,
                a.subscribers,
                c.wrong_counts.get()
            );
            std::process::exit(0);
        })
        .expect("executor")
        .join()
        .expect("join");
}
