//! Snapshot files: loading `dir/dbfilename` at startup, and each shard's saver, which
//! runs the snapshots its clients ask for (SAVE, BGSAVE, SHUTDOWN) and, on shard 0, the
//! `save` schedule. File I/O goes through the shard's own io_uring (glommio's
//! `BufferedFile`); what a snapshot is and how shards take part is
//! `corekv_shard::persist`.
//!
//! A snapshot is written to `temp-<pid>-<shard>.rdb` in `dir`, synced, renamed over
//! `dbfilename` and the directory synced: a crash at any point leaves the previous file
//! or the new one, whole.

use std::cell::RefCell;
use std::future::poll_fn;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use corekv_shard::conn::ConnId;
use corekv_shard::message::SnapOp;
use corekv_shard::persist::{self, Item, Job, Next, Parser};
use corekv_shard::rdb;
use corekv_shard::session::snapshot::{self, Sent};
use corekv_shard::shutdown::FinalSave;
use corekv_shard::Shard;
use glommio::io::BufferedFile;

use crate::lifecycle::{Event, Lifecycle};

/// Bytes read from a snapshot file at a time while loading.
const READ_BYTES: usize = 1 << 20;

/// Seconds the schedule waits after a failed snapshot before it tries again (Redis's
/// `CONFIG_BGSAVE_RETRY_DELAY`).
const RETRY_DELAY_MS: u64 = 5000;

/// The snapshot file of the shard's configuration.
fn file_path(shard: &RefCell<Shard>) -> PathBuf {
    let sh = shard.borrow();
    let c = sh.state().config();
    Path::new(&c.dir).join(&c.dbfilename)
}

/// Loads the snapshot file, if there is one: this shard keeps the keys it owns (every
/// shard reads the whole file, at the same time). `Err` says why the file cannot be
/// loaded; the server must not start then (it would start empty over existing data).
pub async fn load(shard: &RefCell<Shard>) -> Result<(), String> {
    load_rdb(shard, &file_path(shard), false).await
}

/// Loads RDB file `path` if it exists (this shard's keys); `keep_expired` for an
/// append-only base, whose log may still touch keys that expired since.
pub async fn load_rdb(
    shard: &RefCell<Shard>,
    path: &Path,
    keep_expired: bool,
) -> Result<(), String> {
    let path = path.to_path_buf();
    let file = match BufferedFile::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            let e = std::io::Error::from(e);
            if e.kind() == std::io::ErrorKind::NotFound {
                return Ok(());
            }
            return Err(format!("cannot open {}: {e}", path.display()));
        }
    };
    let result = read_file(shard, &file, &path, keep_expired).await;
    let _ = file.close().await;
    result
}

async fn read_file(
    shard: &RefCell<Shard>,
    file: &BufferedFile,
    path: &Path,
    keep_expired: bool,
) -> Result<(), String> {
    let started = Instant::now();
    let size = file
        .file_size()
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (id, map, checksum) = {
        let sh = shard.borrow();
        (sh.id(), sh.slot_map(), sh.state().config().rdbchecksum)
    };
    let mut window: Vec<u8> = Vec::new();
    let mut read = 0u64;
    let mut at = 0usize;
    let span = |read: u64, want: usize| want.max(READ_BYTES).min((size - read) as usize);
    read_more(file, path, &mut window, &mut read, span(0, 9)).await?;
    let mut parser = Parser::start(&window).map_err(|e| format!("{}: {e}", path.display()))?;
    at += 9;
    let wanted = |key: &[u8]| map.shard_of(key) == id;
    let mut keys = 0u64;
    loop {
        let next = parser
            .next(&window[at..], &wanted)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        match next {
            Next::Item(Item::End, n) => {
                at += n;
                if window.len() - at < 8 && read < size {
                    let want = span(read, 8);
                    read_more(file, path, &mut window, &mut read, want).await?;
                }
                parser
                    .check(window.get(at..at + 8).unwrap_or_default(), checksum)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                break;
            }
            Next::Item(item, n) => {
                at += n;
                let mut sh = shard.borrow_mut();
                let st = sh.state_mut();
                match item {
                    Item::Key(key, expire_at, Some(value)) => {
                        st.refresh_now();
                        if persist::apply(st, &key, expire_at, value, keep_expired) {
                            keys += 1;
                        }
                    }
                    Item::Function(code) => persist::load_library(st, &code)?,
                    Item::Key(_, _, None) | Item::Meta | Item::End => {}
                }
            }
            Next::More => {
                if read >= size {
                    return Err(format!(
                        "{}: Short read or OOM loading DB. Unrecoverable error, aborting now.",
                        path.display()
                    ));
                }
                window.drain(..at);
                at = 0;
                let need = window.len() * 2;
                let want = span(read, need);
                read_more(file, path, &mut window, &mut read, want).await?;
            }
        }
    }
    tracing::info!(
        shard = id,
        keys,
        ms = started.elapsed().as_millis() as u64,
        "DB loaded from disk"
    );
    Ok(())
}

/// Appends the next `want` bytes of `file` (from `*read`) to `window`.
async fn read_more(
    file: &BufferedFile,
    path: &Path,
    window: &mut Vec<u8>,
    read: &mut u64,
    want: usize,
) -> Result<(), String> {
    let got = file
        .read_at(*read, want)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    window.extend_from_slice(&got);
    *read += got.len() as u64;
    Ok(())
}

/// The saver of a shard: runs the snapshots asked of it, one at a time; on shard 0 also
/// the `save` schedule and the final snapshot of a shutdown. Runs for the life of the
/// shard.
pub async fn saver(shard: Rc<RefCell<Shard>>, lifecycle: Arc<Lifecycle>) {
    let (id, conn) = {
        let mut sh = shard.borrow_mut();
        (sh.id(), sh.state_mut().connect_internal())
    };
    loop {
        let work = if id == 0 {
            let tick = async {
                glommio::timer::sleep(Duration::from_secs(1)).await;
                Work::Tick
            };
            futures_lite::future::or(next_work(&shard, Some(&lifecycle)), tick).await
        } else {
            next_work(&shard, None).await
        };
        let job = match work {
            Work::Job(job) => job,
            Work::Rewrite => {
                let started = Instant::now();
                let result = crate::aof::rewrite(&shard, conn).await;
                snapshot::done(&shard, conn);
                match &result {
                    Ok(()) => tracing::info!(
                        ms = started.elapsed().as_millis() as u64,
                        "Background AOF rewrite finished successfully"
                    ),
                    Err(e) => tracing::warn!(error = %e, "Background AOF rewrite failed"),
                }
                shard.borrow_mut().state_mut().persist.aof.asked = false;
                continue;
            }
            Work::Tick if crate::aof::rewrite_due(&shard, conn).await => {
                shard.borrow_mut().state_mut().persist.aof.asked = true;
                continue;
            }
            Work::Final((save, _)) => {
                let wanted = match save {
                    FinalSave::Save => true,
                    FinalSave::NoSave => false,
                    FinalSave::Default => !shard.borrow().state().config().save.is_empty(),
                };
                let ok = if wanted {
                    let result = run(&shard, conn).await;
                    snapshot::done(&shard, conn);
                    match &result {
                        Ok(()) => tracing::info!("DB saved on disk"),
                        Err(e) => tracing::error!(error = %e, "the final snapshot failed"),
                    }
                    result.is_ok()
                } else {
                    true
                };
                lifecycle.send(Event::Saved(ok));
                continue;
            }
            Work::Tick if due(&shard, conn).await => Job::Background,
            Work::Tick => continue,
        };
        let started = Instant::now();
        let result = run(&shard, conn).await;
        snapshot::done(&shard, conn);
        match &result {
            Ok(()) => tracing::info!(
                ?job,
                ms = started.elapsed().as_millis() as u64,
                "DB saved on disk"
            ),
            Err(e) => tracing::warn!(?job, error = %e, "snapshot failed"),
        }
        let mut sh = shard.borrow_mut();
        sh.answer_waiters(&result);
        sh.state_mut().persist.running = false;
    }
}

/// What the saver does next.
enum Work {
    /// A snapshot a client asked for.
    Job(Job),
    /// A rewrite of the append-only files (BGREWRITEAOF, or their growth).
    Rewrite,
    /// The final snapshot of a shutdown, and what SHUTDOWN said about it.
    Final((FinalSave, bool)),
    /// A second passed (shard 0: look at the schedule).
    Tick,
}

/// Waits for a job on this shard, or (with `lifecycle`: shard 0) the final snapshot.
async fn next_work(shard: &RefCell<Shard>, lifecycle: Option<&Lifecycle>) -> Work {
    poll_fn(|cx| {
        if let Some(asked) = lifecycle.and_then(|l| l.poll_final(cx.waker())) {
            return Poll::Ready(Work::Final(asked));
        }
        let mut sh = shard.borrow_mut();
        let p = &mut sh.state_mut().persist;
        if p.aof.asked && p.started_ms.is_none() {
            return Poll::Ready(Work::Rewrite);
        }
        match p.job.take() {
            Some(job) => {
                p.running = true;
                Poll::Ready(Work::Job(job))
            }
            None => {
                p.saver = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

/// Whether the `save` schedule calls for a snapshot now: a rule's seconds have passed
/// since the last snapshot and the shards together made its number of changes.
async fn due(shard: &RefCell<Shard>, conn: ConnId) -> bool {
    let (rules, lastsave, failed, last_try, busy, n) = {
        let mut sh = shard.borrow_mut();
        sh.refresh_now();
        let st = sh.state();
        let p = &st.persist;
        (
            st.config().save.clone(),
            p.lastsave,
            p.last_failed,
            p.last_try_ms,
            p.started_ms.is_some(),
            sh.slot_map().shards(),
        )
    };
    let now_ms = corekv_shard::ticks::unix_ms();
    let elapsed = (now_ms / 1000).saturating_sub(lastsave);
    if rules.is_empty()
        || busy
        || (failed && now_ms.saturating_sub(last_try) < RETRY_DELAY_MS)
        || !rules.iter().any(|&(secs, _)| elapsed >= secs)
    {
        return false;
    }
    let mut dirty = 0u64;
    for s in 0..n {
        let reply = snapshot::ask(shard, conn, s, SnapOp::Dirty).await;
        dirty += std::str::from_utf8(
            reply
                .get(1..reply.len().saturating_sub(2))
                .unwrap_or_default(),
        )
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    }
    snapshot::done(shard, conn);
    rules
        .iter()
        .any(|&(secs, changes)| elapsed >= secs && dirty >= changes)
}

/// Takes one snapshot: marks the instant on every shard, writes the file, tells every
/// shard how it ended.
async fn run(shard: &RefCell<Shard>, conn: ConnId) -> Result<(), String> {
    snapshot::begin(shard, conn, None).await?;
    let (dir, path) = {
        let sh = shard.borrow();
        let c = sh.state().config();
        (PathBuf::from(&c.dir), Path::new(&c.dir).join(&c.dbfilename))
    };
    let result = write(shard, conn, &dir, &path).await;
    end(shard, conn, result.is_ok(), false).await;
    result.map(|_| ())
}

/// Tells every shard the snapshot (or rewrite) ended.
pub(crate) async fn end(shard: &RefCell<Shard>, conn: ConnId, ok: bool, rewrite: bool) {
    let n = shard.borrow().slot_map().shards();
    let sent: Vec<Sent> = (0..n)
        .map(|s| snapshot::send(shard, conn, s, SnapOp::End { ok, rewrite }))
        .collect();
    for s in sent {
        if let Sent::Away(hole) = s {
            snapshot::reply(shard, conn, hole).await;
        }
    }
}

/// Writes the file of the snapshot whose instant is marked to `path` (through a temp
/// file in `dir`, which holds it). Returns its size.
pub(crate) async fn write(
    shard: &RefCell<Shard>,
    conn: ConnId,
    dir: &Path,
    path: &Path,
) -> Result<u64, String> {
    let (checksum, n, me, head) = {
        let sh = shard.borrow();
        let st = sh.state();
        let c = st.config();
        let mut head = Vec::new();
        persist::header(
            &mut head,
            corekv_shard::ticks::unix_ms(),
            st.store().used_memory() as u64,
            &persist::libraries(st),
        );
        (c.rdbchecksum, sh.slot_map().shards(), sh.id(), head)
    };
    let tmp = dir.join(format!("temp-{}-{me}.rdb", std::process::id()));
    let io = |what: &str, e: std::io::Error| format!("{what} {}: {e}", tmp.display());
    let file = BufferedFile::create(&tmp)
        .await
        .map_err(|e| io("cannot create", e.into()))?;
    let result = async {
        let mut crc = rdb::crc64(0, &head);
        let mut pos = write_all(&file, head, 0)
            .await
            .map_err(|e| io("cannot write", e))?;
        // One request in flight per shard: they encode while this one writes.
        let mut sent: Vec<Option<Sent>> = (0..n)
            .map(|s| Some(snapshot::send(shard, conn, s, SnapOp::Chunk)))
            .collect();
        while sent.iter().any(Option::is_some) {
            for (s, slot) in sent.iter_mut().enumerate() {
                let mut bytes = match slot.take() {
                    None => continue,
                    Some(Sent::Here(b)) => b,
                    Some(Sent::Away(hole)) => snapshot::reply(shard, conn, hole).await,
                    Some(Sent::Gone) => return Err("the saver's connection closed".into()),
                };
                // The status byte is last, so taking it moves nothing.
                let last = bytes.pop() != Some(b'0');
                if !last {
                    *slot = Some(snapshot::send(shard, conn, s, SnapOp::Chunk));
                }
                if !bytes.is_empty() {
                    crc = rdb::crc64(crc, &bytes);
                    pos += write_all(&file, bytes, pos)
                        .await
                        .map_err(|e| io("cannot write", e))?;
                }
            }
        }
        let mut tail = Vec::new();
        persist::footer(&mut tail, crc, checksum);
        pos += write_all(&file, tail, pos)
            .await
            .map_err(|e| io("cannot write", e))?;
        file.fdatasync()
            .await
            .map_err(|e| io("cannot sync", e.into()))?;
        Ok::<u64, String>(pos)
    }
    .await;
    let _ = file.close().await;
    let size = match result {
        Ok(size) => size,
        Err(e) => {
            let _ = glommio::io::remove(&tmp).await;
            return Err(e);
        }
    };
    glommio::io::rename(&tmp, path)
        .await
        .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))?;
    // The rename itself must survive a crash.
    sync_dir(dir).await?;
    Ok(size)
}

/// Syncs directory `dir`: the renames and creations in it survive a crash.
pub(crate) async fn sync_dir(dir: &Path) -> Result<(), String> {
    let d = glommio::io::Directory::open(dir)
        .await
        .map_err(|e| format!("cannot open {}: {e}", dir.display()))?;
    let synced = d.sync().await;
    let _ = d.close().await;
    synced.map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

/// Writes all of `buf` at `pos`; returns its length. A short write (a full disk) is an
/// error.
async fn write_all(file: &BufferedFile, buf: Vec<u8>, pos: u64) -> std::io::Result<u64> {
    let len = buf.len();
    let n = file.write_at(buf, pos).await?;
    if n != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("short write: {n} of {len} bytes"),
        ));
    }
    Ok(len as u64)
}
