//! Generates the context and the permissions of our commands (capabilities/ lists which are allowed).
fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(&[
            "list_accounts",
            "unlock",
            "enroll",
            "enroll_from_qr",
            "remove_account",
            "list_requests",
            "approve",
            "deny",
            "history",
            "list_grants",
            "revoke_grant",
            "get_settings",
            "set_settings",
            "take_link",
        ])),
    )
    .unwrap_or_else(|error| {
        eprintln!("tauri build failed: {error:#}");
        std::process::exit(1)
    });
}
