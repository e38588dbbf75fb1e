//! `outband-device`: the headless authenticator (work in progress).
fn main() {}
