//! The scripts in `scripts/` under `cargo test`: their Python unit tests (topology and
//! tune logic on a fixture `/sys` tree of a 2-socket SMT machine, sweep planning, CSV and
//! plot), and `scripts/pinning-sweep --quick` end to end against this build's corekv and
//! corekv-bench.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn python_unit_tests_pass() {
    let out = Command::new("python3")
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "scripts/tests",
            "-t",
            "scripts/tests",
        ])
        .current_dir(repo())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 must be installed to test scripts/");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scripts' unit tests failed:\n{err}");
    assert!(err.contains("\nOK"), "{err}");
}

#[test]
fn pinning_sweep_quick_runs_end_to_end() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_corekv-bench"));
    let corekv = bench.with_file_name("corekv");
    if !corekv.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "corekv", "--bin", "corekv"]);
        if bench
            .parent()
            .and_then(|p| p.file_name())
            .is_some_and(|n| n == "release")
        {
            cmd.arg("--release");
        }
        assert!(cmd.status().expect("cargo build").success());
    }
    let out_dir = std::env::temp_dir().join(format!("corekv-sweep-quick-{}", std::process::id()));
    let started = Instant::now();
    let out = Command::new(repo().join("scripts/pinning-sweep"))
        .arg("--quick")
        .arg("--out")
        .arg(&out_dir)
        .arg("--corekv")
        .arg(&corekv)
        .arg("--corekv-bench")
        .arg(&bench)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run scripts/pinning-sweep");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pinning-sweep --quick failed:\n{stdout}\n{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "--quick took {:?}",
        started.elapsed()
    );
    let csv = std::fs::read_to_string(out_dir.join("results.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows.iter().all(|r| r.contains(",ok,")), "{csv}");
    assert!(
        csv.contains("\"ok: keys 0/1000, hops_out +"),
        "the hop cell checks where keys landed: {csv}"
    );
    let svg = std::fs::read_to_string(out_dir.join("plot.svg")).unwrap();
    assert!(
        svg.starts_with("<?xml") || svg.starts_with("<svg"),
        "{}",
        &svg[..80.min(svg.len())]
    );
    assert!(
        svg.contains("requests/s") && svg.contains("µs"),
        "axis units in the plot"
    );
    let _ = std::fs::remove_dir_all(&out_dir);
}
