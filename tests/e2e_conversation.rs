//! End to end, conversations: the same value gets the same placeholder across turns of one
//! conversation (by `x-garim-conversation` header, or derived from the first system + user
//! message), and one conversation's placeholders never restore to another one's values.

mod common;

use common::upstream::{Behavior, Upstream};
use common::*;
use serde_json::{json, Value};

const OTHER_EMAIL: &str = "lee.jiwoo@example.org";

fn chat(messages: Value) -> Value {
    json!({"model": "gpt-4o-mini", "messages": messages})
}

fn masked_user_text(up: &Upstream, i: usize) -> String {
    let v = up.last().json();
    v["messages"][i]["content"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_header_same_placeholder_across_turns() {
    let up = Upstream::start().await;
    let gw = gateway_for(&up, "");
    let h = [("x-garim-conversation", "conv-a")];
    let r = gw
        .post_json_with(
            CHAT,
            &h,
            &chat(json!([{"role": "user", "content": PROMPT}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t1 = masked_user_text(&up, 0);
    let email1 = placeholder_of(&t1, "EMAIL").expect("turn 1 e-mail not masked");
    let phone1 = placeholder_of(&t1, "PHONE").expect("turn 1 phone not masked");

    // Turn 2 of the same conversation, with a different first message: only the header ties it.
    let turn2 = format!("Write to {OTHER_EMAIL} and to {EMAIL}, or call 010-2345-6789");
    let r = gw
        .post_json_with(CHAT, &h, &chat(json!([{"role": "user", "content": turn2}])))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t2 = masked_user_text(&up, 0);
    assert_no_leak("turn 2 upstream", &up.last().raw());
    assert!(!t2.contains(OTHER_EMAIL), "new e-mail not masked: {t2}");
    let phs = placeholders(&t2);
    let emails: Vec<&String> = phs.iter().filter(|p| p.starts_with("[EMAIL_")).collect();
    assert_eq!(
        emails.len(),
        2,
        "two distinct e-mails, two placeholders: {t2}"
    );
    assert_eq!(
        emails[1], &email1,
        "same e-mail, same conversation, new placeholder: {t2}"
    );
    assert_ne!(
        emails[0], &email1,
        "different e-mail got the old placeholder: {t2}"
    );
    assert!(t2.contains(&phone1), "same phone, new placeholder: {t2}");
    // and the answer of turn 2 restores both
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        content.contains(OTHER_EMAIL) && content.contains(EMAIL),
        "{content}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversations_do_not_share_mappings() {
    let up = Upstream::start().await;
    let gw = gateway_for(&up, "");
    let r = gw
        .post_json_with(
            CHAT,
            &[("x-garim-conversation", "conv-a")],
            &chat(json!([{"role": "user", "content": PROMPT}])),
        )
        .await;
    assert_eq!(r.status, 200);
    let email_a = placeholder_of(&masked_user_text(&up, 0), "EMAIL").unwrap();

    // Conversation B has no personal data; the model answers with A's placeholder.
    up.set(Behavior {
        reply_text: Some(format!("Sure, writing to {email_a} now.")),
        ..Default::default()
    });
    let r = gw
        .post_json_with(
            CHAT,
            &[("x-garim-conversation", "conv-b")],
            &chat(json!([{"role": "user", "content": "Say hello to nobody in particular."}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_no_leak("conversation B's answer", &r.body);
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        content.contains(&email_a),
        "an unknown placeholder should stay as it is: {content}"
    );

    // Conversation C has its own e-mail; the same placeholder text restores to C's value.
    let r = gw
        .post_json_with(
            CHAT,
            &[("x-garim-conversation", "conv-c")],
            &chat(json!([{"role": "user", "content": format!("Mail {OTHER_EMAIL}")}])),
        )
        .await;
    let email_c = placeholder_of(&masked_user_text(&up, 0), "EMAIL").expect("C's e-mail masked");
    up.set(Behavior {
        reply_text: Some(format!("Writing to {email_c}.")),
        ..Default::default()
    });
    let r2 = gw
        .post_json_with(
            CHAT,
            &[("x-garim-conversation", "conv-c")],
            &chat(json!([{"role": "user", "content": format!("Mail {OTHER_EMAIL}")}])),
        )
        .await;
    assert_eq!(r.status, 200);
    let content = r2.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(content, format!("Writing to {OTHER_EMAIL}."));
    assert!(!r2.text().contains(EMAIL), "conversation C got A's value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_conversation_is_stable_and_isolated() {
    let up = Upstream::start().await;
    let gw = gateway_for(&up, "");
    let system = json!({"role": "system", "content": "You are a helpful assistant."});
    let u1 = json!({"role": "user", "content": PROMPT});
    let r = gw.post_json(CHAT, &chat(json!([system, u1]))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t1 = masked_user_text(&up, 1);

    // Turn 2 repeats the history, as chat clients do, and adds one more user message.
    let answer = r.json()["choices"][0]["message"]["content"].clone();
    let u2 =
        json!({"role": "user", "content": format!("Use {EMAIL} and 4111 1111 1111 1111 again")});
    let r = gw
        .post_json(
            CHAT,
            &chat(json!([system, u1, {"role": "assistant", "content": answer}, u2])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_no_leak("turn 2 upstream", &up.last().raw());
    assert_eq!(
        masked_user_text(&up, 1),
        t1,
        "the same first message was masked differently"
    );
    let t3 = masked_user_text(&up, 3);
    for label in ["EMAIL", "CREDIT_CARD"] {
        assert_eq!(
            placeholder_of(&t3, label),
            placeholder_of(&t1, label),
            "{label}: {t3}"
        );
    }

    // Another derived conversation: its answer quoting the first one's placeholder is not
    // restored to the first one's value.
    let email1 = placeholder_of(&t1, "EMAIL").unwrap();
    up.set(Behavior {
        reply_text: Some(format!("ok {email1}")),
        ..Default::default()
    });
    let r = gw
        .post_json(
            CHAT,
            &chat(
                json!([system, {"role": "user", "content": "A question without personal data."}]),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        !r.text().contains(EMAIL),
        "derived conversations share a mapping: {}",
        r.text()
    );
}
