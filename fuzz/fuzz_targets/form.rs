//! Any bytes as an `application/x-www-form-urlencoded` body: the token, PAR,
//! CIBA and device endpoints' parser, and the authorization request's
//! (which refuses repeated parameters). Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = outband_server::extract::FormParams::parse(data.to_vec().into()) {
        let _ = (form.get("grant_type"), form.contains("client_id"));
    }
    let _ = outband_server::authorize::request::parse_params(data);
});
