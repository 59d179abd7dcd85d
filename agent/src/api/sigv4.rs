//! AWS Signature Version 4, server side, as the aws CLI and boto3 sign ECS requests
//! (harness/ecs-api-wire.md §7). Pure: the caller hands in the request's method, path, query,
//! headers, raw body, the configured keys and the clock; nothing here does I/O or logs.
//!
//! Checks, in AWS's order: no `Authorization` → `MissingAuthenticationTokenException`;
//! unparsable header, missing parts or a signed-header list without `host`, `x-amz-date`,
//! `x-amz-target` (or an unsigned `x-amz-security-token`) → `IncompleteSignatureException`;
//! `X-Amz-Date` more than 5 minutes off → `InvalidSignatureException` ("Signature expired" /
//! "Signature not yet current"); a credential scope of another day, region, service or
//! terminator → `InvalidSignatureException`; an unknown key or a session token that does not
//! match the key's → `UnrecognizedClientException`; an HMAC mismatch →
//! `InvalidSignatureException`. Signatures are compared in constant time.
//!
//! HMAC-SHA256 and SHA-256 come from RustCrypto's `hmac` and `sha2` crates: `sha2` is already
//! the workspace's digest (images/ verifies blobs with it), `hmac` is its companion from the
//! same maintainers, and `Mac::verify_slice` compares tags in constant time (via `subtle`), so
//! no hand-written crypto or comparison is needed. aws-lc-rs/ring are in the lock only as
//! rustls backends and would pull a C/asm build into the agent for two primitives.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

type HmacSha256 = Hmac<Sha256>;

/// The clock-skew limit AWS applies to SigV4 requests.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

/// The only algorithm botocore uses for ECS.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// One configured key pair (a profile of the credentials file).
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// The secret access key.
    pub secret: String,
    /// The session token requests with this key must carry, if any.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("secret", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Access key id → key.
pub type Keys = HashMap<String, Key>;

/// Why a request was refused. The variant is the AWS error type; the text is AWS's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header at all (HTTP 403).
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The header is malformed or lacks a required part.
    #[error("{0}")]
    IncompleteSignature(String),
    /// Wrong signature, skewed clock, or a wrong credential scope.
    #[error("{0}")]
    InvalidSignature(String),
    /// Unknown access key id or a wrong session token.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
}

/// The parts of a request that SigV4 covers.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path as received (`/`).
    pub path: &'a str,
    /// The raw query string (empty for ECS).
    pub query: &'a str,
    /// Every header: name (any case) and value as received; repeated names allowed.
    pub headers: &'a [(String, String)],
    /// The raw body bytes.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The values of header `name` (case-insensitive).
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).first().copied()
    }
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Access key id.
    pub key_id: String,
    /// Scope date `YYYYMMDD`.
    pub date: String,
    /// Scope region.
    pub region: String,
    /// Scope service.
    pub service: String,
    /// Scope terminator (`aws4_request`).
    pub terminator: String,
    /// `content-type;host;...` as sent.
    pub signed_headers: String,
    /// 64 hex digits as sent.
    pub signature: String,
}

/// Parse `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
pub fn parse_authorization(header: &str) -> Result<Authorization, AuthError> {
    let incomplete = |what: &str| {
        AuthError::IncompleteSignature(format!("{what} Authorization={}", redact(header)))
    };
    let rest = header
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| {
            let algorithm = header.split(' ').next().unwrap_or("");
            AuthError::IncompleteSignature(format!(
                "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} is accepted)"
            ))
        })?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(AuthError::IncompleteSignature(format!(
                "'{}' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'.",
                redact(part),
                redact(header)
            )));
        };
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed_headers = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let mut missing = String::new();
    for (name, v) in [
        ("Credential", credential.is_none()),
        ("Signature", signature.is_none()),
        ("SignedHeaders", signed_headers.is_none()),
    ] {
        if v {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(incomplete(missing.trim_end()));
    };
    let parts: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(&format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'."
        )));
    };
    Ok(Authorization {
        key_id: (*key_id).to_owned(),
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        terminator: (*terminator).to_owned(),
        signed_headers: signed_headers.to_owned(),
        signature: signature.to_owned(),
    })
}

/// The header with its `Signature=` value hidden: error messages echo the header as AWS's do,
/// but a signature must never reach a client-visible text or a log.
fn redact(text: &str) -> String {
    match text.find("Signature=") {
        Some(i) => {
            let start = i + "Signature=".len();
            let end = text[start..]
                .find(|c: char| c == ',' || c.is_whitespace())
                .map_or(text.len(), |e| start + e);
            format!("{}<redacted>{}", &text[..start], &text[end..])
        }
        None => text.to_owned(),
    }
}

/// A header value as SigV4 canonicalises it: trimmed, inner runs of spaces collapsed.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical query string: parameters sorted by name then value, as received (already
/// URI-encoded by the client). Empty for ECS.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request over `signed_headers` (a `;`-list of lower-case names).
pub fn canonical_request(req: &Request<'_>, signed_headers: &str) -> String {
    let mut out = String::new();
    out.push_str(req.method);
    out.push('\n');
    out.push_str(if req.path.is_empty() { "/" } else { req.path });
    out.push('\n');
    out.push_str(&canonical_query(req.query));
    out.push('\n');
    for name in signed_headers.split(';') {
        let values: Vec<String> = req
            .header_values(name)
            .into_iter()
            .map(canonical_value)
            .collect();
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    out.push_str(&hex::encode(Sha256::digest(req.body)));
    out
}

/// The string to sign for `amz_date` and `scope` (`date/region/service/aws4_request`).
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so new_from_slice cannot fail; the fallback only keeps
    // this total.
    let mut mac =
        HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()));
    mac.update(data);
    mac
}

/// kSigning = HMAC chain over date, region, service and `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date.finalize().into_bytes(), region.as_bytes());
    let k_service = hmac(&k_region.finalize().into_bytes(), service.as_bytes());
    let k_signing = hmac(&k_service.finalize().into_bytes(), b"aws4_request");
    k_signing.finalize().into_bytes().to_vec()
}

/// `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`) as epoch seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())
            .flatten()
    };
    let (y, mo, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (h, mi, se) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Epoch seconds as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(epoch: i64) -> String {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// What the verifier needs besides the request.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    /// The region the agent serves (its ARNs' region); the scope must name it.
    pub region: &'a str,
    /// The configured keys.
    pub keys: &'a Keys,
    /// Now, in epoch seconds.
    pub now: i64,
}

/// Verify `req`; on success, the access key id that signed it.
pub fn verify(req: &Request<'_>, policy: Policy<'_>) -> Result<String, AuthError> {
    let header = req
        .header("authorization")
        .ok_or(AuthError::MissingAuthenticationToken)?;
    let auth = parse_authorization(header)?;
    let amz_date = req.header("x-amz-date").ok_or_else(|| {
        AuthError::IncompleteSignature(format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={}",
            redact(header)
        ))
    })?;
    let signed: Vec<&str> = auth.signed_headers.split(';').collect();
    for required in ["host", "x-amz-date", "x-amz-target"] {
        if !signed.contains(&required) {
            return Err(AuthError::IncompleteSignature(format!(
                "'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let token = req.header("x-amz-security-token");
    if token.is_some() && !signed.contains(&"x-amz-security-token") {
        return Err(AuthError::IncompleteSignature(
            "'x-amz-security-token' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let when = parse_amz_date(amz_date).ok_or_else(|| {
        AuthError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;
    check_skew(amz_date, when, policy.now)?;
    check_scope(&auth, amz_date, policy.region)?;
    let key = policy
        .keys
        .get(&auth.key_id)
        .ok_or(AuthError::UnrecognizedClient)?;
    let token_ok = match (&key.session_token, token) {
        (None, None) => true,
        (Some(want), Some(got)) => ct_eq(want.as_bytes(), got.as_bytes()),
        _ => false,
    };
    if !token_ok {
        return Err(AuthError::UnrecognizedClient);
    }
    let canonical = canonical_request(req, &auth.signed_headers);
    let scope = format!(
        "{}/{}/{}/{}",
        auth.date, auth.region, auth.service, auth.terminator
    );
    let to_sign = string_to_sign(amz_date, &scope, &canonical);
    let k = signing_key(&key.secret, &auth.date, &auth.region, &auth.service);
    let given = hex::decode(&auth.signature).unwrap_or_default();
    // verify_slice compares in constant time; a signature of the wrong length or not hex
    // simply fails.
    hmac(&k, to_sign.as_bytes())
        .verify_slice(&given)
        .map_err(|_| {
            AuthError::InvalidSignature(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
            )
        })?;
    Ok(auth.key_id)
}

/// Constant-time equality of two byte strings (the length is not secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_skew(amz_date: &str, when: i64, now: i64) -> Result<(), AuthError> {
    if when < now - MAX_SKEW_SECS {
        return Err(AuthError::InvalidSignature(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            format_amz_date(now - MAX_SKEW_SECS),
            format_amz_date(now)
        )));
    }
    if when > now + MAX_SKEW_SECS {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            format_amz_date(now + MAX_SKEW_SECS),
            format_amz_date(now)
        )));
    }
    Ok(())
}

fn check_scope(auth: &Authorization, amz_date: &str, region: &str) -> Result<(), AuthError> {
    let day = amz_date.get(..8).unwrap_or("");
    if auth.date != day {
        return Err(AuthError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{amz_date}'.",
            auth.date
        )));
    }
    if auth.region != region {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. (this agent serves '{region}')",
            auth.region
        )));
    }
    if auth.service != "ecs" {
        return Err(AuthError::InvalidSignature(
            "Credential should be scoped to correct service: 'ecs'. "
                .trim_end()
                .into(),
        ));
    }
    if auth.terminator != "aws4_request" {
        return Err(AuthError::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            auth.terminator
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
