//! Builds the C helper that gives INCRBYFLOAT Redis's exact `long double` arithmetic.
fn main() {
    println!("cargo:rerun-if-changed=csrc/longdouble.c");
    cc::Build::new()
        .file("csrc/longdouble.c")
        .flag_if_supported("-std=c99")
        .warnings(true)
        .compile("corekv_longdouble");
}
