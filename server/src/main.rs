//! outband-server binary (under construction)
fn main() {}
