//! Links the binaries with `--wrap=syscall`, so glommio's io_uring rings are set up
//! through corekv-ring-flags' wrapper and get `IORING_SETUP_COOP_TASKRUN` (see that
//! crate's docs).

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--wrap=syscall");
}
