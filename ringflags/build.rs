//! Compiles the `syscall` wrapper. Binaries that want it link with
//! `-Wl,--wrap=syscall` (their own build scripts say so: see the crate docs).

fn main() {
    println!("cargo:rerun-if-changed=src/wrap_syscall.c");
    cc::Build::new()
        .file("src/wrap_syscall.c")
        .warnings(true)
        .extra_warnings(true)
        .compile("corekv_ring_flags");
}
