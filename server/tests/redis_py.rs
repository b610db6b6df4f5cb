//! redis-py (from PyPI) against the real binary: its default pipeline (MULTI/EXEC), its
//! optimistic-locking `transaction` helper, WatchError, pub/sub with a handler thread,
//! its Lock (Lua scripts) and `register_script`, in RESP2 and RESP3, on 1 and 4 shards
//! (`tests/python/redis_py_check.py`).
//!
//! redis-py is installed on first use into `target/pyenv` (a venv), so the README's test
//! command needs nothing installed by hand but `python3`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Server, SHARD_COUNTS};

/// A Python with redis-py: `COREKV_PYTHON` if set, else `target/pyenv`, created and
/// filled from PyPI when missing.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("COREKV_PYTHON") {
        return p.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = root.join("target/pyenv");
    let py = venv.join("bin/python");
    let has_redis = |py: &PathBuf| {
        Command::new(py)
            .args(["-c", "import redis"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_redis(&py) {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 is needed for the redis-py tests");
        assert!(made.success(), "python3 -m venv {} failed", venv.display());
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "redis>=5"])
            .status()
            .expect("pip");
        assert!(pip.success(), "pip install redis failed (PyPI reachable?)");
    }
    assert!(
        has_redis(&py),
        "redis-py did not install into {}",
        venv.display()
    );
    py
}

#[test]
fn redis_py_transactions_and_pubsub_work() {
    let py = python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/redis_py_check.py");
    for shards in SHARD_COUNTS {
        let srv = Server::corekv(shards, &[]);
        for protocol in ["2", "3"] {
            let out = Command::new(&py)
                .arg(&script)
                .arg(srv.port.to_string())
                .arg(protocol)
                .output()
                .expect("run python");
            assert!(
                out.status.success() && out.stdout.starts_with(b"ok"),
                "{shards} shards, RESP{protocol}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
