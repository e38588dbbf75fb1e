//! Any bytes as `authorization_details` (RFC 9396): parsed as JSON, then
//! validated against the types the server knows. Must never panic; invalid
//! content is an `invalid_authorization_details` error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(details) = outband_server::rar::parse(value) {
        let _ = outband_server::rar::check(&details, None);
        let _ = outband_server::rar::check(&details, Some(&["payment_initiation".to_owned()]));
    }
});
