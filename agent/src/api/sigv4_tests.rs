//! SigV4 against botocore's own signatures (harness/sigv4-vectors.json, carried as facts)
//! and each way a request can be refused.

use super::*;
use serde_json::Value;

fn vectors() -> Vec<Value> {
    let v: Value = serde_json::from_str(include_str!("testdata/sigv4-vectors.json")).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}"))
}

/// The headers botocore sent for a vector, plus the Host and an unsigned User-Agent.
fn headers(v: &Value) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = v["request_headers_as_sent_by_botocore_excluding_host"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, x)| (k.clone(), x.as_str().unwrap().to_owned()))
        .collect();
    h.push(("Host".into(), s(&v["inputs"], "host_header").into()));
    h.push(("User-Agent".into(), "aws-cli/1.46.3 (not signed)".into()));
    h
}

fn keys(v: &Value) -> Keys {
    let i = &v["inputs"];
    Keys::from([(
        s(i, "access_key_id").to_owned(),
        Key {
            secret: s(i, "secret_access_key").to_owned(),
            session_token: i["session_token"].as_str().map(str::to_owned),
        },
    )])
}

fn check(
    v: &Value,
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Result<String, AuthError> {
    let keys = keys(v);
    let req = Request {
        method: "POST",
        path: "/",
        query: "",
        headers,
        body,
    };
    verify(
        &req,
        Policy {
            region: s(&v["inputs"], "region"),
            keys: &keys,
            now,
        },
    )
}

fn now_of(v: &Value) -> i64 {
    parse_amz_date(s(&v["inputs"], "amz_date")).unwrap()
}

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    for (n, x) in headers.iter_mut() {
        if n.eq_ignore_ascii_case(name) {
            *x = value.to_owned();
        }
    }
}

#[test]
fn botocore_vectors_compute_and_verify() {
    let all = vectors();
    assert_eq!(all.len(), 4);
    for v in &all {
        let name = s(v, "name");
        let i = &v["inputs"];
        let e = &v["expected"];
        let h = headers(v);
        let body = s(i, "body").as_bytes();
        let req = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body,
        };
        let canonical = canonical_request(&req, s(e, "signed_headers"));
        assert_eq!(canonical, s(e, "canonical_request"), "{name}");
        let sts = string_to_sign(s(i, "amz_date"), s(e, "credential_scope"), &canonical);
        assert_eq!(sts, s(e, "string_to_sign"), "{name}");
        let k = signing_key(
            s(i, "secret_access_key"),
            &s(i, "amz_date")[..8],
            s(i, "region"),
            "ecs",
        );
        assert_eq!(
            hex::encode(&k),
            s(&e["signing_key_chain_hex"], "kSigning"),
            "{name}"
        );
        let auth = parse_authorization(s(e, "authorization")).unwrap();
        assert_eq!(auth.signature, s(e, "signature"), "{name}");
        assert_eq!(
            check(v, &h, body, now_of(v)),
            Ok(s(i, "access_key_id").to_owned()),
            "{name}"
        );
    }
}

#[test]
fn refusals_carry_aws_error_types() {
    let v = &vectors()[0];
    let body = s(&v["inputs"], "body").as_bytes();
    let now = now_of(v);
    let good = headers(v);

    // Unsigned.
    let unsigned: Vec<_> = good
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("authorization"))
        .cloned()
        .collect();
    assert_eq!(
        check(v, &unsigned, body, now),
        Err(AuthError::MissingAuthenticationToken)
    );

    // Wrong secret: another signature over the same request.
    let mut wrong = keys(v);
    wrong
        .values_mut()
        .for_each(|k| k.secret = "not-the-secret".into());
    let req = Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &good,
        body,
    };
    let e = verify(
        &req,
        Policy {
            region: "us-east-1",
            keys: &wrong,
            now,
        },
    )
    .unwrap_err();
    assert!(
        matches!(&e, AuthError::InvalidSignature(m) if m.starts_with("The request signature we calculated does not match")),
        "{e:?}"
    );

    // A tampered body, a tampered signed header.
    let e = check(v, &good, b"{\"clusterName\": \"demo2\"}", now).unwrap_err();
    assert!(matches!(e, AuthError::InvalidSignature(_)), "{e:?}");
    let mut h = good.clone();
    set(
        &mut h,
        "x-amz-target",
        "AmazonEC2ContainerServiceV20141113.DeleteCluster",
    );
    assert!(matches!(
        check(v, &h, body, now),
        Err(AuthError::InvalidSignature(_))
    ));
    // An unsigned header may change.
    let mut h = good.clone();
    set(&mut h, "user-agent", "Boto3/1.44.8");
    assert!(check(v, &h, body, now).is_ok());

    // Ten minutes off either way (the request is otherwise valid).
    let e = check(v, &good, body, now + 600).unwrap_err();
    assert_eq!(
        e,
        AuthError::InvalidSignature(
            "Signature expired: 20260115T123045Z is now earlier than 20260115T123545Z (20260115T124045Z - 5 min.)".into()
        )
    );
    let e = check(v, &good, body, now - 600).unwrap_err();
    assert_eq!(
        e,
        AuthError::InvalidSignature(
            "Signature not yet current: 20260115T123045Z is still later than 20260115T122545Z (20260115T122045Z + 5 min.)".into()
        )
    );
    assert!(check(v, &good, body, now + 299).is_ok(), "within 5 minutes");

    // Unknown key id.
    let mut h = good.clone();
    let auth = s(&v["expected"], "authorization").replace("AKIDEXAMPLE", "AKIDUNKNOWN");
    set(&mut h, "authorization", &auth);
    assert_eq!(check(v, &h, body, now), Err(AuthError::UnrecognizedClient));

    // Malformed: missing parts, no equal sign, another algorithm.
    set(
        &mut h,
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260115/us-east-1/ecs/aws4_request",
    );
    let e = check(v, &h, body, now).unwrap_err();
    assert!(
        matches!(&e, AuthError::IncompleteSignature(m) if m.contains("requires 'Signature' parameter") && m.contains("requires 'SignedHeaders' parameter")),
        "{e:?}"
    );
    set(
        &mut h,
        "authorization",
        "AWS4-HMAC-SHA256 Credential, Signature=abcd",
    );
    let e = check(v, &h, body, now).unwrap_err();
    assert!(
        matches!(&e, AuthError::IncompleteSignature(m) if m.contains("missing equal-sign") && !m.contains("abcd")),
        "the signature is never echoed: {e:?}"
    );
    set(&mut h, "authorization", "AWS4-HMAC-SHA1 Credential=x");
    assert!(matches!(
        check(v, &h, body, now),
        Err(AuthError::IncompleteSignature(_))
    ));

    // No X-Amz-Date; a signed-header list without x-amz-target.
    let no_date: Vec<_> = good
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"))
        .cloned()
        .collect();
    assert!(
        matches!(check(v, &no_date, body, now), Err(AuthError::IncompleteSignature(m)) if m.contains("X-Amz-Date"))
    );
    let mut h = good.clone();
    let auth = s(&v["expected"], "authorization").replace(";x-amz-target", "");
    set(&mut h, "authorization", &auth);
    assert!(
        matches!(check(v, &h, body, now), Err(AuthError::IncompleteSignature(m)) if m.contains("x-amz-target"))
    );

    // A scope of another region or service.
    let mut h = good.clone();
    let auth = s(&v["expected"], "authorization").replace("us-east-1", "eu-west-1");
    set(&mut h, "authorization", &auth);
    assert!(
        matches!(check(v, &h, body, now), Err(AuthError::InvalidSignature(m)) if m.contains("valid region, not 'eu-west-1'"))
    );
    let auth = s(&v["expected"], "authorization").replace("/ecs/", "/sts/");
    set(&mut h, "authorization", &auth);
    assert!(
        matches!(check(v, &h, body, now), Err(AuthError::InvalidSignature(m)) if m.contains("correct service: 'ecs'"))
    );
}

#[test]
fn session_tokens_must_match_the_key() {
    let v = &vectors()[1];
    let body = s(&v["inputs"], "body").as_bytes();
    let now = now_of(v);
    let good = headers(v);
    assert!(check(v, &good, body, now).is_ok());
    // Another token: unrecognised, even though the signature covers it correctly for the client.
    let mut h = good.clone();
    set(&mut h, "x-amz-security-token", "AnotherToken");
    assert_eq!(check(v, &h, body, now), Err(AuthError::UnrecognizedClient));
    // No token for a key that has one.
    let no_token: Vec<_> = good
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("x-amz-security-token"))
        .cloned()
        .collect();
    assert_eq!(
        check(v, &no_token, body, now),
        Err(AuthError::UnrecognizedClient)
    );
    // A token sent but left out of SignedHeaders.
    let mut h = good.clone();
    let auth = s(&v["expected"], "authorization").replace("x-amz-security-token;", "");
    set(&mut h, "authorization", &auth);
    assert!(matches!(
        check(v, &h, body, now),
        Err(AuthError::IncompleteSignature(_))
    ));
}

#[test]
fn amz_dates_round_trip() {
    for d in [
        "20151120T202346Z",
        "20260301T000000Z",
        "20000229T235959Z",
        "19700101T000000Z",
    ] {
        assert_eq!(format_amz_date(parse_amz_date(d).unwrap()), d);
    }
    assert_eq!(parse_amz_date("19700101T000100Z"), Some(60));
    assert_eq!(parse_amz_date("20261127T225720Z"), Some(1_795_820_240));
    for bad in [
        "",
        "2026-11-27T22:57:20Z",
        "20261327T225720Z",
        "20261127T225720",
        "2026112xT225720Z",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}

#[test]
fn keys_never_print_their_secret() {
    let k = Key {
        secret: "s3cr3t".into(),
        session_token: Some("t0k3n".into()),
    };
    let d = format!("{k:?}");
    assert!(!d.contains("s3cr3t") && !d.contains("t0k3n"), "{d}");
}
