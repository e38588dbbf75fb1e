//! Invitations: the `outband://enroll?...` link (typed, pasted or scanned from
//! a QR code) or a bare activation code plus an issuer. See
//! `docs/device-api.md` §1.

use serde::Serialize;
use url::Url;

use crate::Error;

/// Characters in an activation code.
const CODE_LEN: usize = 28;
/// Crockford's base32 alphabet: no I, L, O or U.
const CODE_ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Longest input we try to read (a link is well under this).
const MAX_INPUT: usize = 4096;

/// An invitation to enroll this device with an issuer.
#[derive(Clone, Debug, Serialize)]
pub struct Invite {
    /// The authorization server.
    pub issuer: Url,
    /// The activation code, normalised (upper case, no dashes).
    pub code: String,
    /// The AS signing key the link pins (absent for a bare code).
    pub pinned: Option<PinnedKey>,
}

/// The AS's ES256 key an invitation link names: `kid` in `{issuer}/jwks` must
/// have the RFC 7638 thumbprint `jkt`.
#[derive(Clone, Debug, Serialize)]
pub struct PinnedKey {
    /// Key id in the issuer's JWKS.
    pub kid: String,
    /// SHA-256 JWK thumbprint (base64url).
    pub jkt: String,
}

fn invalid(why: impl Into<String>) -> Error {
    Error::InvalidInvite(why.into())
}

/// A code as typed: dashes, spaces and case ignored, `O` read as `0`, `I`/`L` as `1`.
pub(crate) fn normalize_code(code: &str) -> Result<String, Error> {
    let canonical: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    if let Some(bad) = canonical.chars().find(|c| !CODE_ALPHABET.contains(*c)) {
        return Err(invalid(format!("the activation code cannot contain {bad:?}")));
    }
    let len = canonical.chars().count();
    if len != CODE_LEN {
        return Err(invalid(format!(
            "an activation code has {CODE_LEN} characters, this one has {len}"
        )));
    }
    Ok(canonical)
}

/// Checks an issuer URL: http(s), no query or fragment.
pub(crate) fn parse_issuer(value: &str) -> Result<Url, Error> {
    let url = Url::parse(value.trim()).map_err(|e| invalid(format!("the issuer {value:?} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(invalid(format!("the issuer {value:?} must be an https:// URL")));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(format!(
            "the issuer {value:?} must not have a query, fragment or user"
        )));
    }
    Ok(url)
}

impl Invite {
    /// `outband://enroll?issuer=..&code=..&kid=..&jkt=..` link, or a bare
    /// activation code (then `default_issuer` is required, else
    /// [`Error::InvalidInvite`]). Codes: dashes/spaces/case ignored, O→0, I/L→1 (Crockford).
    pub fn parse(input: &str, default_issuer: Option<&Url>) -> Result<Invite, Error> {
        let input = input.trim();
        if input.is_empty() {
            return Err(invalid("it is empty"));
        }
        if input.len() > MAX_INPUT {
            return Err(invalid("it is far too long"));
        }
        let is_link = input
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("outband:"));
        if !is_link {
            if input.contains("://") {
                return Err(invalid("a link must start with outband://enroll"));
            }
            let issuer = default_issuer.ok_or_else(|| {
                invalid(
                    "a bare activation code needs the issuer (the server's URL, e.g. --issuer https://as.example.com)",
                )
            })?;
            return Ok(Invite {
                issuer: parse_issuer(issuer.as_str())?,
                code: normalize_code(input)?,
                pinned: None,
            });
        }
        let url = Url::parse(input).map_err(|e| invalid(format!("the link cannot be read ({e})")))?;
        if url.host_str() != Some("enroll") {
            return Err(invalid("a link must start with outband://enroll"));
        }
        let param = |name: &str| {
            url.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
                .filter(|value| !value.is_empty())
        };
        let issuer = param("issuer").ok_or_else(|| invalid("the link has no issuer"))?;
        let code = param("code").ok_or_else(|| invalid("the link has no code"))?;
        let pinned = match (param("kid"), param("jkt")) {
            (Some(kid), Some(jkt)) => Some(PinnedKey { kid, jkt }),
            (None, None) => None,
            _ => return Err(invalid("the link has only one of kid and jkt")),
        };
        Ok(Invite {
            issuer: parse_issuer(&issuer)?,
            code: normalize_code(&code)?,
            pinned,
        })
    }

    /// Decode a QR code from PNG/JPEG bytes (crates `rqrr` + `image`) holding such a link.
    pub fn from_qr_image(bytes: &[u8]) -> Result<Invite, Error> {
        let image = image::load_from_memory(bytes)
            .map_err(|e| invalid(format!("the image cannot be read as PNG or JPEG ({e})")))?
            .to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        if grids.is_empty() {
            return Err(invalid("no QR code found in the image"));
        }
        let mut last_error = None;
        for grid in grids {
            match grid.decode() {
                Ok((_, content)) => return Invite::parse(&content, None),
                Err(err) => last_error = Some(err.to_string()),
            }
        }
        Err(invalid(format!(
            "the QR code cannot be decoded ({})",
            last_error.unwrap_or_default()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "ABCD-EFGH-JKMN-PQRS-TVWX-YZ01-2345";

    #[test]
    fn links_are_parsed() {
        let link = format!("outband://enroll?issuer=https%3A%2F%2Fas.example.com&code={CODE}&kid=k1&jkt=abc");
        let invite = Invite::parse(&link, None).unwrap();
        assert_eq!(invite.issuer.as_str(), "https://as.example.com/");
        assert_eq!(invite.code, "ABCDEFGHJKMNPQRSTVWXYZ012345");
        let pinned = invite.pinned.unwrap();
        assert_eq!((pinned.kid.as_str(), pinned.jkt.as_str()), ("k1", "abc"));
        let unpinned = Invite::parse(&format!("outband://enroll?issuer=https://a.test&code={CODE}"), None).unwrap();
        assert!(unpinned.pinned.is_none());
    }

    #[test]
    fn bad_links_are_refused() {
        for link in [
            "outband://other?issuer=https://a.test&code=x".to_owned(),
            format!("outband://enroll?code={CODE}"),
            "outband://enroll?issuer=https://a.test".to_owned(),
            format!("outband://enroll?issuer=ftp://a.test&code={CODE}"),
            format!("outband://enroll?issuer=https://a.test&code={CODE}&kid=k1"),
            format!("https://a.test/enroll?code={CODE}"),
            String::new(),
        ] {
            assert!(
                matches!(Invite::parse(&link, None), Err(Error::InvalidInvite(_))),
                "{link}"
            );
        }
    }

    #[test]
    fn bare_codes_are_forgiving_and_need_an_issuer() {
        let issuer = Url::parse("https://as.example.com").unwrap();
        let typed = "abcd efgh jkmn pqrs tvwx yzoi 2345";
        let invite = Invite::parse(typed, Some(&issuer)).unwrap();
        assert_eq!(invite.code, "ABCDEFGHJKMNPQRSTVWXYZ012345");
        assert!(matches!(Invite::parse(CODE, None), Err(Error::InvalidInvite(m)) if m.contains("issuer")));
        assert!(matches!(Invite::parse("ABCD-EFGH", Some(&issuer)), Err(Error::InvalidInvite(m)) if m.contains("28")));
        assert!(matches!(Invite::parse("ABCD-EFGU", Some(&issuer)), Err(Error::InvalidInvite(m)) if m.contains('U')));
    }

    /// `text` as a PNG QR code (8 pixels a module, a 4-module quiet zone).
    fn qr_png(text: &str) -> Vec<u8> {
        let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
        let (width, colors) = (code.width() as u32, code.to_colors());
        let (scale, quiet) = (8, 4);
        let size = (width + 2 * quiet) * scale;
        let image = image::GrayImage::from_fn(size, size, |x, y| {
            let (mx, my) = ((x / scale).checked_sub(quiet), (y / scale).checked_sub(quiet));
            let dark = match (mx, my) {
                (Some(mx), Some(my)) if mx < width && my < width => {
                    colors[(my * width + mx) as usize] == qrcode::Color::Dark
                }
                _ => false,
            };
            image::Luma([if dark { 0 } else { 255 }])
        });
        let mut png = std::io::Cursor::new(Vec::new());
        image.write_to(&mut png, image::ImageFormat::Png).unwrap();
        png.into_inner()
    }

    #[test]
    fn qr_images_of_links_are_read() {
        let link = format!("outband://enroll?issuer=https%3A%2F%2Fas.example.com&code={CODE}&kid=k1&jkt=abc");
        let invite = Invite::from_qr_image(&qr_png(&link)).unwrap();
        assert_eq!(invite.issuer.as_str(), "https://as.example.com/");
        assert_eq!(invite.code, "ABCDEFGHJKMNPQRSTVWXYZ012345");
        assert_eq!(invite.pinned.unwrap().kid, "k1");
        // A QR code of something else is read, then refused as an invitation.
        assert!(matches!(
            Invite::from_qr_image(&qr_png("https://example.com/")),
            Err(Error::InvalidInvite(m)) if m.contains("outband://enroll")
        ));
        // A blank image has no QR code.
        let mut blank = std::io::Cursor::new(Vec::new());
        image::GrayImage::from_pixel(64, 64, image::Luma([255]))
            .write_to(&mut blank, image::ImageFormat::Png)
            .unwrap();
        assert!(matches!(
            Invite::from_qr_image(blank.get_ref()),
            Err(Error::InvalidInvite(m)) if m.contains("no QR code")
        ));
    }

    #[test]
    fn garbage_images_are_refused() {
        assert!(matches!(
            Invite::from_qr_image(b"not an image"),
            Err(Error::InvalidInvite(_))
        ));
    }
}
