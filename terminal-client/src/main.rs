//! `outband-pos`: the Outband point-of-sale terminal (see `cli`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
