//! `outband-device`: the headless authenticator (see `outband_authenticator_core::cli`).

fn main() -> std::process::ExitCode {
    outband_authenticator_core::cli::main()
}
