//! One client connection's I/O, from accept to close: reads into its session, runs the
//! session's rounds, writes what they produce. Everything between the socket and the
//! shard (parsing, dispatch, reply assembly, buffer limits) is the runtime-free
//! [`Session`] in the shard crate; this file owns only the socket and the timers.

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use corekv_shard::session::{Attention, Next, Output, RoundEnd, Session};
use corekv_shard::Shard;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

/// Serves one accepted connection until it or the shard closes it.
pub async fn serve(shard: Rc<RefCell<Shard>>, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let addr = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let laddr = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let fd = stream.as_raw_fd();
    let mut session = Session::open(&mut shard.borrow_mut(), addr, laddr, fd);
    if let Err(e) = run(&shard, &mut session, &mut stream).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
    let _ = stream.close().await;
    session.close(&mut shard.borrow_mut());
}

/// A blocking command waits for its reply: meanwhile the socket is still read, so a
/// client that goes away stops waiting on every shard (what it sends is buffered, not
/// run, as Redis does for a blocked client). Returns false when the connection ends.
async fn wait_blocked(
    shard: &RefCell<Shard>,
    session: &mut Session,
    stream: &mut TcpStream,
) -> std::io::Result<bool> {
    let conn = session.conn();
    // One wait for the whole time: a command over several shards' keys is driven by it,
    // and must not start over after every read.
    let reply = Session::blocked_reply(shard, conn);
    let mut reply = std::pin::pin!(reply);
    loop {
        let waiting = async { Ok(reply.as_mut().await) };
        let space = session.read_space();
        let read = async { Err(stream.read(space).await) };
        let gone = match future::or(waiting, read).await {
            Ok(alive) => return Ok(alive),
            Err(Ok(n)) => n == 0 || !session.received(&mut shard.borrow_mut(), n),
            Err(Err(e)) => {
                tracing::debug!(error = %e, "read failed while blocked");
                true
            }
        };
        if gone {
            // The wait may hold other shards paused (a command over several shards
            // tries atomically): let it finish, told the connection is closing.
            shard.borrow_mut().state_mut().kill(conn);
            reply.as_mut().await;
            return Ok(false);
        }
    }
}

async fn run(
    shard: &RefCell<Shard>,
    session: &mut Session,
    stream: &mut TcpStream,
) -> std::io::Result<()> {
    let mut next = Next::Read;
    loop {
        let mut pushed = false;
        if next == Next::Read {
            // Wait for input, for messages to a subscriber, or for the shard to close the
            // connection (idle timeout, CLIENT KILL, shutdown, an output limit).
            let conn = session.conn();
            let attention = async { Err(Session::attention(shard, conn).await) };
            let space = session.read_space();
            let read = future::or(async { Ok(stream.read(space).await) }, attention).await;
            match read {
                Err(Attention::Closed) => {
                    tracing::debug!("closing a client the shard closed");
                    return Ok(());
                }
                // Nothing was read (glommio reads on readiness: dropping the read loses
                // no data); write the messages.
                Err(Attention::Output) => pushed = true,
                Ok(n) => {
                    let n = n?;
                    if n == 0 || !session.received(&mut shard.borrow_mut(), n) {
                        return Ok(());
                    }
                }
            }
        }
        let end = if pushed {
            RoundEnd::NeedInput
        } else {
            session.round(shard).await
        };
        if end == RoundEnd::CloseNow {
            return Ok(());
        }
        if end == RoundEnd::Blocked && !wait_blocked(shard, session, stream).await? {
            return Ok(());
        }
        // appendfsync always: the round's writes are durable before its replies leave.
        crate::aof::durable(shard).await;
        let output = session.output(&mut shard.borrow_mut());
        match output {
            Output::Close => return Ok(()),
            Output::Nothing => {}
            Output::Write { patience } => {
                let conn = session.conn();
                let write = async { Some(stream.write_all(session.out()).await) };
                // A subscriber's output may pass its hard limit while this write waits:
                // the shard then closes the connection (and counted it).
                let overflowed = async {
                    Session::overflowed(shard, conn).await;
                    None
                };
                let write = future::or(write, overflowed);
                let (result, timed_out) = match patience {
                    None => match write.await {
                        Some(r) => (r, false),
                        None => return Ok(()),
                    },
                    Some(secs) => {
                        // Over the soft limit: the client may take this long to read it.
                        let timer = async {
                            glommio::timer::sleep(Duration::from_secs(secs)).await;
                            Some(None)
                        };
                        let write = async { write.await.map(Some) };
                        match future::or(write, timer).await {
                            Some(Some(r)) => (r, false),
                            Some(None) => (Ok(()), true),
                            None => return Ok(()),
                        }
                    }
                };
                session.written(&mut shard.borrow_mut(), timed_out);
                if timed_out {
                    return Ok(());
                }
                result?;
            }
        }
        next = session.next(&mut shard.borrow_mut(), end);
        if next == Next::Close {
            return Ok(());
        }
    }
}
