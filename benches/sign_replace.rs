//! Sign + build one LTI 1.1 replaceResult: the POX body (quick-xml), the body
//! hash, the OAuth 1.0a base string and HMAC-SHA1 signature, with a fresh nonce,
//! timestamp and message identifier, exactly as every real attempt does.
//! Run through `benches/sign_vs_oauthlib.sh` to compare with Python oauthlib.

use criterion::{Criterion, criterion_group, criterion_main};
use passback::lti11::client::{Lti11Credentials, OutcomeOp, check_target, sign};
use passback::lti11::oauth::SignatureMethod;
use passback::lti11::pox::ReplaceResult;

fn bench(c: &mut Criterion) {
    let creds = Lti11Credentials {
        consumer_key: "key".into(),
        consumer_secret: "secret".into(),
        method: SignatureMethod::HmacSha1,
        allowed_hosts: vec!["lms.example.com".into()],
        allow_http: false,
    };
    let url = check_target(
        "https://lms.example.com/api/lti/v1/tools/1/grade_passback?x=1&a=b%20c",
        &creds,
    )
    .expect("allowed");
    let op = OutcomeOp::Replace(Box::new(ReplaceResult {
        message_identifier: String::new(),
        sourcedid: String::new(),
        score: Some(0.92),
        result_data: None,
        result_total_score: None,
        submitted_at: None,
        prioritize_non_tool_grade: false,
        needs_additional_review: false,
    }));
    c.bench_function("sign_replace_result", |b| {
        b.iter(|| {
            let signed = sign(&creds, &url, &op, std::hint::black_box("3124567")).expect("signs");
            std::hint::black_box(signed.authorization.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
