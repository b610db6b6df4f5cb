//! The append-only files (`appendonly yes`): the directory made ready at start, each
//! shard's load (the base, then its own increments) and its log writer, durability
//! waits for `appendfsync always`, and the rewrite shard 0's saver runs (BGREWRITEAOF,
//! or the log's growth). What is logged and how a log replays is
//! `corekv_shard::aof`; files go through the shard's io_uring (glommio's
//! `BufferedFile`).
//!
//! Crash safety: the manifest is replaced by rename (then the directory synced), and
//! lists an increment before any record of it can be acknowledged: a rewrite creates
//! the new generation's files and lists them (next to the old ones) before its instant;
//! once the new base is in place a second manifest drops the old files.

use std::cell::RefCell;
use std::future::poll_fn;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use corekv_shard::aof::{self, Fsync, Incr, Manifest};
use corekv_shard::conn::ConnId;
use corekv_shard::message::SnapOp;
use corekv_shard::session::snapshot;
use corekv_shard::{Config, Shard};
use glommio::io::{BufferedFile, OpenOptions};

/// How often a failed write or sync is retried.
const RETRY: Duration = Duration::from_secs(1);

/// The append-only directory and the files' name prefix.
fn place(c: &Config) -> (PathBuf, String) {
    (
        Path::new(&c.dir).join(&c.appenddirname),
        c.appendfilename.clone(),
    )
}

/// Writes `m` as the manifest (temp file, rename, directory sync), with std I/O: at
/// start, before any ring runs.
fn write_manifest_now(dir: &Path, prefix: &str, m: &Manifest) -> Result<(), String> {
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    let tmp = dir.join(format!("temp-{}.manifest", aof::manifest_name(prefix)));
    let path = dir.join(aof::manifest_name(prefix));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(|e| io("cannot create", &tmp, e))?;
        f.write_all(m.format().as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| io("cannot write", &tmp, e))?;
    }
    std::fs::rename(&tmp, &path).map_err(|e| io("cannot rename", &tmp, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("cannot sync", dir, e))
}

/// Reads the manifest, if there is one.
fn read_manifest_now(dir: &Path, prefix: &str) -> Result<Option<Manifest>, String> {
    let path = dir.join(aof::manifest_name(prefix));
    match std::fs::read(&path) {
        Ok(text) => Manifest::parse(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Makes the append-only directory ready before the shards start (main thread). With
/// no manifest yet, generation 1 begins from the snapshot file if there is one (hard
/// linked as the base, so nothing it holds is lost), with an empty increment per shard.
/// A manifest whose increments were written by a different number of shards cannot be
/// replayed (each shard replays its own): an error, unless they are all empty.
pub fn prepare(c: &Config) -> Result<(), String> {
    if !c.appendonly {
        return Ok(());
    }
    let (dir, prefix) = place(c);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let n = c.shards;
    let Some(mut m) = read_manifest_now(&dir, &prefix)? else {
        let mut m = Manifest::default();
        let rdb = Path::new(&c.dir).join(&c.dbfilename);
        if rdb.exists() {
            let base = aof::base_name(&prefix, 1);
            let to = dir.join(&base);
            let _ = std::fs::remove_file(&to);
            std::fs::hard_link(&rdb, &to)
                .or_else(|_| std::fs::copy(&rdb, &to).map(|_| ()))
                .map_err(|e| format!("cannot copy {} to {}: {e}", rdb.display(), to.display()))?;
            m.base = Some((base, 1));
        }
        add_incrs(&dir, &prefix, &mut m, 1, n)?;
        write_manifest_now(&dir, &prefix, &m)?;
        tracing::info!(dir = %dir.display(), "created the append-only files");
        return Ok(());
    };
    for file in m
        .base
        .iter()
        .map(|b| &b.0)
        .chain(m.incrs.iter().map(|i| &i.file))
    {
        if !dir.join(file).exists() {
            return Err(format!(
                "The AOF file {file} listed in {} doesn't exist",
                aof::manifest_name(&prefix)
            ));
        }
    }
    let gen = m.incrs.iter().map(|i| i.gen).max();
    let complete = gen.is_some_and(|g| {
        (0..n).all(|s| m.incrs.iter().any(|i| i.gen == g && i.shard == s)) && m.shards() == n
    });
    if !complete {
        let written = m
            .incrs
            .iter()
            .filter(|i| std::fs::metadata(dir.join(&i.file)).map_or(0, |md| md.len()) > 0)
            .count();
        if written > 0 {
            return Err(format!(
                "the append-only files in {} were written by {} shards and this server has \
                 {n}: start it with {} shards, run BGREWRITEAOF, then restart with {n}",
                dir.display(),
                m.shards(),
                m.shards()
            ));
        }
        // Only empty increments: a fresh generation for this many shards.
        let old: Vec<Incr> = std::mem::take(&mut m.incrs);
        let next = m
            .next_gen()
            .max(old.iter().map(|i| i.gen + 1).max().unwrap_or(1));
        add_incrs(&dir, &prefix, &mut m, next, n)?;
        write_manifest_now(&dir, &prefix, &m)?;
        for i in old {
            let _ = std::fs::remove_file(dir.join(i.file));
        }
    }
    Ok(())
}

/// Creates generation `gen`'s empty increments for `n` shards and lists them in `m`.
fn add_incrs(dir: &Path, prefix: &str, m: &mut Manifest, gen: u64, n: usize) -> Result<(), String> {
    for s in 0..n {
        let file = aof::incr_name(prefix, gen, s);
        let path = dir.join(&file);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        m.incrs.push(Incr {
            file,
            gen,
            shard: s,
        });
    }
    Ok(())
}

/// Loads this shard's data at start: with `appendonly yes` the base and this shard's
/// increments (and turns its log on), otherwise the snapshot file.
pub async fn load(shard: &RefCell<Shard>) -> Result<(), String> {
    let config = shard.borrow().state().config().clone();
    if !config.appendonly {
        return crate::persist::load(shard).await;
    }
    let started = Instant::now();
    let (dir, prefix) = place(&config);
    let m = read_manifest_now(&dir, &prefix)?.unwrap_or_default();
    let id = shard.borrow().id();
    let mut base_size = 0;
    if let Some((base, _)) = &m.base {
        let path = dir.join(base);
        base_size = std::fs::metadata(&path).map_or(0, |md| md.len());
        crate::persist::load_rdb(shard, &path, true).await?;
    }
    let mut commands = 0u64;
    let mut gen = 0;
    let mut incr_size = 0;
    for incr in m.incrs.iter().filter(|i| i.shard == id) {
        let path = dir.join(&incr.file);
        let bytes = read_all(&path).await?;
        let replayed = {
            let mut sh = shard.borrow_mut();
            let st = sh.state_mut();
            aof::replay(st, &bytes, config.aof_load_truncated)
                .map_err(|e| format!("{}: {e}", path.display()))?
        };
        commands += replayed.commands;
        let mut len = bytes.len() as u64;
        if let Some((dropped, whole)) = replayed.dropped {
            len -= dropped as u64;
            tracing::warn!(
                file = %path.display(),
                bytes = dropped,
                records_of_unfinished_multi = whole,
                "!!! Warning: short read while loading the AOF file: the last {dropped} bytes \
                 (an unfinished record) are dropped and the file truncated, because \
                 aof-load-truncated is enabled"
            );
            let f = OpenOptions::new()
                .write(true)
                .buffered_open(&path)
                .await
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let truncated = f.truncate(len).await;
            let synced = f.fdatasync().await;
            let _ = f.close().await;
            truncated
                .and(synced)
                .map_err(|e| format!("cannot truncate {}: {e}", path.display()))?;
        }
        gen = gen.max(incr.gen);
        incr_size = len;
    }
    let mut sh = shard.borrow_mut();
    let st = sh.state_mut();
    st.log_mut().start(gen);
    st.log_mut().on = true;
    st.persist.aof.incr_size = incr_size;
    if id == 0 {
        st.persist.aof.base_size = base_size;
        let incrs: u64 = m
            .incrs
            .iter()
            .map(|i| std::fs::metadata(dir.join(&i.file)).map_or(0, |md| md.len()))
            .sum();
        st.persist.aof.size_at_rewrite = base_size + incrs;
    }
    tracing::info!(
        shard = id,
        commands,
        ms = started.elapsed().as_millis() as u64,
        "DB loaded from append only file"
    );
    Ok(())
}

/// The whole of file `path`.
async fn read_all(path: &Path) -> Result<Vec<u8>, String> {
    let err = |e: glommio::GlommioError<()>| format!("cannot read {}: {e}", path.display());
    let file = BufferedFile::open(path).await.map_err(err)?;
    let size = file.file_size().await.map_err(err)?;
    let mut out = Vec::with_capacity(size as usize);
    while (out.len() as u64) < size {
        let want = ((size - out.len() as u64) as usize).min(4 << 20);
        let got = file.read_at(out.len() as u64, want).await.map_err(err)?;
        if got.is_empty() {
            break;
        }
        out.extend_from_slice(&got);
    }
    let _ = file.close().await;
    Ok(out)
}

/// Waits until every record this shard has logged is durable (`appendfsync always`,
/// before replies leave). Returns at once when nothing waits to be synced.
pub async fn durable(shard: &RefCell<Shard>) {
    let target = {
        let sh = shard.borrow();
        let st = sh.state();
        let log = st.log();
        if !log.on || st.config().appendfsync != Fsync::Always || log.durable() >= log.appended() {
            return;
        }
        log.appended()
    };
    wait_durable(shard, target).await;
}

async fn wait_durable(shard: &RefCell<Shard>, target: u64) {
    poll_fn(|cx| {
        if shard
            .borrow_mut()
            .state_mut()
            .log_mut()
            .poll_durable(target, cx.waker())
        {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

/// At shutdown: every record logged so far is synced, whatever `appendfsync` says (at
/// most `limit`).
pub async fn flush(shard: &RefCell<Shard>, limit: Duration) {
    let target = shard.borrow().state().log().appended();
    let timer = async {
        glommio::timer::sleep(limit).await;
        tracing::error!("the append-only log could not be synced at shutdown");
    };
    futures_lite::future::or(wait_durable(shard, target), timer).await;
}

/// A shard's log writer: writes what the shard logs to its increment, syncs it as
/// `appendfsync` says, and retries a failed write or sync every second (writes are
/// refused with -MISCONF meanwhile).
pub async fn writer(shard: Rc<RefCell<Shard>>) {
    let (dir, prefix, id) = {
        let sh = shard.borrow();
        let (dir, prefix) = place(sh.state().config());
        (dir, prefix, sh.id())
    };
    // The open increment: generation, file, its size.
    let mut open: Option<(u64, BufferedFile, u64)> = None;
    // Bytes taken and not yet written: generation, bytes, whether the generation ends.
    let mut backlog: std::collections::VecDeque<(u64, Vec<u8>, bool)> = Default::default();
    let mut taken_upto = 0u64;
    let mut written_upto = 0u64;
    let mut synced_upto = 0u64;
    let mut last_sync = Instant::now();
    loop {
        let policy = shard.borrow().state().config().appendfsync;
        let unsynced = written_upto > synced_upto;
        // Wait for records, a sync someone waits for, or the next retry or sync.
        let deadline = if !backlog.is_empty() {
            Some(RETRY)
        } else if unsynced && policy == Fsync::EverySec {
            Some(Duration::from_secs(1).saturating_sub(last_sync.elapsed()))
        } else {
            None
        };
        let mut sync_now = false;
        let wake = poll_fn(|cx| {
            let mut sh = shard.borrow_mut();
            let log = sh.state_mut().log_mut();
            if log.take_sync_wanted() && (unsynced || !backlog.is_empty()) {
                sync_now = true;
            }
            if let Some(t) = log.take(cx.waker()) {
                return Poll::Ready(Some(t));
            }
            if sync_now {
                return Poll::Ready(None);
            }
            log.park(cx.waker());
            Poll::Pending
        });
        let taken = match deadline {
            Some(d) => {
                let timer = async {
                    glommio::timer::sleep(d).await;
                    None
                };
                futures_lite::future::or(wake, timer).await
            }
            None => wake.await,
        };
        if let Some(t) = taken {
            for (gen, bytes) in t.sealed {
                backlog.push_back((gen, bytes, true));
            }
            backlog.push_back((t.current.0, t.current.1, false));
            taken_upto = t.upto;
        }
        // Write in order; stop at the first failure (kept for the retry).
        let mut failed = None;
        while let Some((gen, bytes, ends)) = backlog.front_mut() {
            let (gen, ends) = (*gen, *ends);
            if open.as_ref().map(|o| o.0) != Some(gen) {
                if let Some((_, f, _)) = open.take() {
                    let _ = f.fdatasync().await;
                    let _ = f.close().await;
                }
                let path = dir.join(aof::incr_name(&prefix, gen, id));
                match open_incr(&path).await {
                    Ok((f, size)) => open = Some((gen, f, size)),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let (_, f, pos) = open.as_mut().expect("just opened");
            if !bytes.is_empty() {
                match f.write_at(bytes.clone(), *pos).await {
                    Ok(n) if n == bytes.len() => *pos += n as u64,
                    Ok(n) => {
                        *pos += n as u64;
                        bytes.drain(..n);
                        failed = Some("short write (is the disk full?)".to_string());
                        break;
                    }
                    Err(e) => {
                        failed = Some(std::io::Error::from(e).to_string());
                        break;
                    }
                }
            }
            if ends {
                // A finished generation is synced whole before the next one starts.
                if let Some((_, f, _)) = open.take() {
                    if let Err(e) = f.fdatasync().await {
                        failed = Some(std::io::Error::from(e).to_string());
                        open = Some((gen, f, 0));
                        break;
                    }
                    let _ = f.close().await;
                }
            }
            backlog.pop_front();
        }
        if backlog.is_empty() {
            written_upto = taken_upto;
        }
        let size = open.as_ref().map_or(0, |o| o.2);
        let sync = failed.is_none()
            && written_upto > synced_upto
            && (sync_now
                || policy == Fsync::Always
                || (policy == Fsync::EverySec && last_sync.elapsed() >= Duration::from_secs(1)));
        if sync {
            if let Some((_, f, _)) = &open {
                if let Err(e) = f.fdatasync().await {
                    failed = Some(std::io::Error::from(e).to_string());
                }
            }
            if failed.is_none() {
                synced_upto = written_upto;
                last_sync = Instant::now();
            }
        }
        let mut sh = shard.borrow_mut();
        let st = sh.state_mut();
        st.persist.aof.incr_size = size;
        match failed {
            Some(e) => {
                if st.log_mut().error.is_none() {
                    tracing::error!(shard = id, error = %e, "writing the append-only log failed");
                }
                st.log_mut().error = Some(e);
            }
            None => {
                if st.log_mut().error.take().is_some() {
                    tracing::warn!(
                        shard = id,
                        "AOF write error looks solved, Redis can write again."
                    );
                }
                if sync {
                    st.log_mut().synced(synced_upto);
                }
            }
        }
    }
}

/// Opens increment `path` for appending: the file and its size.
async fn open_incr(path: &Path) -> Result<(BufferedFile, u64), String> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .buffered_open(path)
        .await
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let size = f
        .file_size()
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok((f, size))
}

/// Writes `m` as the manifest through the ring.
async fn write_manifest(dir: &Path, prefix: &str, m: &Manifest) -> Result<(), String> {
    let tmp = dir.join(format!("temp-{}", aof::manifest_name(prefix)));
    let path = dir.join(aof::manifest_name(prefix));
    let io = |what: &str, e: glommio::GlommioError<()>| format!("{what} {}: {e}", tmp.display());
    let f = BufferedFile::create(&tmp)
        .await
        .map_err(|e| io("cannot create", e))?;
    let text = m.format().into_bytes();
    let len = text.len();
    let written = f.write_at(text, 0).await;
    let synced = f.fdatasync().await;
    let _ = f.close().await;
    match written {
        Ok(n) if n == len => {}
        Ok(_) => return Err(format!("cannot write {}: short write", tmp.display())),
        Err(e) => return Err(io("cannot write", e)),
    }
    synced.map_err(|e| io("cannot sync", e))?;
    glommio::io::rename(&tmp, &path)
        .await
        .map_err(|e| format!("cannot rename {}: {e}", tmp.display()))?;
    crate::persist::sync_dir(dir).await
}

/// Rewrites the append-only files (shard 0's saver): the next generation's increments
/// are listed, every shard's log moves to them at a snapshot's instant, the snapshot
/// becomes the new base, and the older files go.
pub async fn rewrite(shard: &RefCell<Shard>, conn: ConnId) -> Result<(), String> {
    let (dir, prefix, on, n) = {
        let sh = shard.borrow();
        let c = sh.state().config();
        let (dir, prefix) = place(c);
        (dir, prefix, c.appendonly, sh.slot_map().shards())
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        let e = format!("cannot create {}: {e}", dir.display());
        fail(shard, conn).await;
        return Err(e);
    }
    let old = match read_manifest_now(&dir, &prefix) {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => {
            fail(shard, conn).await;
            return Err(e);
        }
    };
    let gen = old.next_gen();
    if on {
        let mut during = old.clone();
        let listed = async {
            for s in 0..n {
                let file = aof::incr_name(&prefix, gen, s);
                let (f, _) = open_incr(&dir.join(&file)).await?;
                let _ = f.close().await;
                during.incrs.push(Incr {
                    file,
                    gen,
                    shard: s,
                });
            }
            write_manifest(&dir, &prefix, &during).await
        }
        .await;
        if let Err(e) = listed {
            fail(shard, conn).await;
            return Err(e);
        }
        for s in 0..n {
            snapshot::ask(shard, conn, s, SnapOp::Allow(gen)).await;
        }
    }
    snapshot::begin(shard, conn, Some(gen)).await?;
    let base = aof::base_name(&prefix, gen);
    let result = crate::persist::write(shard, conn, &dir, &dir.join(&base)).await;
    let result = match result {
        Ok(size) => {
            let m = Manifest {
                base: Some((base.clone(), gen)),
                incrs: if on {
                    (0..n)
                        .map(|s| Incr {
                            file: aof::incr_name(&prefix, gen, s),
                            gen,
                            shard: s,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            };
            write_manifest(&dir, &prefix, &m).await.map(|()| size)
        }
        Err(e) => Err(e),
    };
    crate::persist::end(shard, conn, result.is_ok(), true).await;
    let size = result?;
    // The older files are no longer listed.
    for file in old
        .base
        .iter()
        .map(|b| &b.0)
        .chain(old.incrs.iter().map(|i| &i.file))
    {
        if *file != base {
            let _ = glommio::io::remove(dir.join(file)).await;
        }
    }
    let mut sh = shard.borrow_mut();
    let p = &mut sh.state_mut().persist;
    p.aof.base_size = size;
    p.aof.size_at_rewrite = size;
    Ok(())
}

/// A rewrite that could not begin still counts as failed on every shard.
async fn fail(shard: &RefCell<Shard>, conn: ConnId) {
    let now = corekv_shard::ticks::unix_ms();
    shard.borrow_mut().state_mut().persist.rewrite_began(now);
    crate::persist::end(shard, conn, false, true).await;
}

/// Whether the log grew enough for an automatic rewrite (shard 0's tick): by
/// `auto-aof-rewrite-percentage` of its size after the last rewrite, and to at least
/// `auto-aof-rewrite-min-size`.
pub async fn rewrite_due(shard: &RefCell<Shard>, conn: ConnId) -> bool {
    let (pct, min, base, since, busy, n) = {
        let sh = shard.borrow();
        let st = sh.state();
        let c = st.config();
        if !c.appendonly || c.auto_aof_rewrite_percentage == 0 {
            return false;
        }
        (
            c.auto_aof_rewrite_percentage,
            c.auto_aof_rewrite_min_size,
            st.persist.aof.base_size,
            st.persist.aof.size_at_rewrite,
            st.persist.busy(),
            sh.slot_map().shards(),
        )
    };
    if busy {
        return false;
    }
    let mut incr = 0u64;
    for s in 0..n {
        let reply = snapshot::ask(shard, conn, s, SnapOp::LogSize).await;
        if let Ok(Some((corekv_protocol::frame::Frame::Array(v), _))) =
            corekv_protocol::frame::parse(&reply)
        {
            if let Some(corekv_protocol::frame::Frame::Integer(b)) = v.get(1) {
                incr += *b as u64;
            }
        }
    }
    snapshot::done(shard, conn);
    let current = base + incr;
    if current <= min {
        return false;
    }
    let since = since.max(1);
    current.saturating_mul(100) / since >= 100 + pct
}
