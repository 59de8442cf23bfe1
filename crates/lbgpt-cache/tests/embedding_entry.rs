//! The stored form of one input's embedding (`lbgpt_cache::embedding_entry`): floats keep
//! their exact bits, base64 keeps its text, every other field survives, the layout is the one
//! docs/cache.md describes, format version 1 (JSON) entries are still read, and every damaged
//! or foreign value is a typed error, never a wrong answer.

use lbgpt_cache::embedding_entry::{self, EntryError, MAGIC, VERSION};
use lbgpt_core::{EmbeddingResponse, EmbeddingVector};
use serde_json::json;

/// An answer holding one embedding with `vector` (floats or base64 text).
fn answer_with(vector: serde_json::Value) -> EmbeddingResponse {
    serde_json::from_value(json!({
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": 0, "embedding": vector}],
    }))
    .expect("an embeddings answer")
}

fn float_answer(values: &[f32]) -> EmbeddingResponse {
    let mut answer = answer_with(json!([0.0]));
    answer.data[0].embedding = EmbeddingVector::Float(values.to_vec());
    answer
}

fn bits(answer: &EmbeddingResponse) -> Vec<u32> {
    answer.data[0]
        .embedding
        .as_floats()
        .expect("floats")
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

/// Values a JSON round trip could lose or that are easy to get wrong: signed zeros, the
/// smallest subnormals, the extremes, values needing nine digits, infinities and NaN payloads
/// (which JSON cannot even carry).
fn awkward_floats() -> Vec<f32> {
    vec![
        1e-45,
        -1e-45,
        -0.0,
        0.0,
        f32::from_bits(0x0000_0003),
        f32::from_bits(0x007f_ffff),
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        f32::EPSILON,
        0.1,
        1.0 / 3.0,
        0.123_456_79,
        16_777_217.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::from_bits(0x7fc0_1234),
        f32::from_bits(0xffa0_0001),
    ]
}

#[test]
fn floats_keep_their_exact_bits() {
    let answer = float_answer(&awkward_floats());
    let entry = embedding_entry::encode(&answer).expect("encodes");
    let back = embedding_entry::decode(&entry).expect("decodes");
    assert_eq!(bits(&back), bits(&answer));
    assert_eq!(bits(&back)[0], 1, "1e-45 is the smallest subnormal");
    assert_eq!(bits(&back)[2], 0x8000_0000, "-0.0 keeps its sign");
}

#[test]
fn the_simulators_vectors_keep_their_exact_bits() {
    for text in ["hello", "a longer text of the corpus", ""] {
        let vector = lbgpt_sim::expected_embedding_with_dimensions(text, 1536);
        let answer = float_answer(&vector);
        let back = embedding_entry::decode(&embedding_entry::encode(&answer).expect("encodes"))
            .expect("decodes");
        assert_eq!(bits(&back), bits(&answer), "{text:?}");
        assert_eq!(back, answer);
    }
}

#[test]
fn base64_is_kept_as_the_providers_text() {
    // Padded, unpadded, and with non-zero trailing bits: each comes back as it was.
    for text in ["AACAPwAAAL8=", "AACAPwAAAL8", "AACAPwAAAL9=", ""] {
        let answer = answer_with(json!(text));
        let entry = embedding_entry::encode(&answer).expect("encodes");
        let back = embedding_entry::decode(&entry).expect("decodes");
        assert_eq!(
            back.data[0].embedding,
            EmbeddingVector::Base64(text.to_owned())
        );
        // The text is in the entry as it is: no re-encoding.
        if !text.is_empty() {
            assert!(entry.windows(text.len()).any(|w| w == text.as_bytes()));
        }
    }
}

#[test]
fn every_field_but_usage_and_index_survives() {
    let mut answer: EmbeddingResponse = serde_json::from_value(json!({
        "object": "list",
        "model": "text-embedding-3-large",
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
        "system_fingerprint": "fp_1",
        "vendor": {"region": "eu", "cost": [1, 2.5]},
        "data": [{"object": "embedding", "index": 7, "embedding": [0.25, -2.0], "norm": 1.5}],
    }))
    .expect("answer");
    let back = embedding_entry::decode(&embedding_entry::encode(&answer).expect("encodes"))
        .expect("decodes");
    assert_eq!(back.usage, None);
    assert_eq!(back.data[0].index, 0);
    answer.usage = None;
    answer.data[0].index = 0;
    assert_eq!(back, answer);
    assert_eq!(back.extra["vendor"]["cost"], json!([1, 2.5]));
    assert_eq!(back.data[0].extra["norm"], json!(1.5));
}

#[test]
fn the_layout_is_the_documented_one() {
    let answer = float_answer(&[1.0, -0.5]);
    let entry = embedding_entry::encode(&answer).expect("encodes");
    let mut expected = Vec::new();
    expected.extend_from_slice(b"LBGPTEMB");
    expected.extend_from_slice(&[2, 1]);
    for len in [8u32, 4, 22, 9, 0, 0] {
        expected.extend_from_slice(&len.to_le_bytes());
    }
    expected.extend_from_slice(&1.0f32.to_le_bytes());
    expected.extend_from_slice(&(-0.5f32).to_le_bytes());
    expected.extend_from_slice(b"listtext-embedding-3-smallembedding");
    assert_eq!(&entry[..], &expected[..]);
    assert_eq!((MAGIC, VERSION), (b"LBGPTEMB", 2));

    // 1536 floats: the vector's bytes and a small header, a third of the JSON's size.
    let big = float_answer(&lbgpt_sim::expected_embedding_with_dimensions("x", 1536));
    let entry = embedding_entry::encode(&big).expect("encodes");
    assert_eq!(entry.len(), 34 + 1536 * 4 + 4 + 22 + 9);
    assert!(entry.len() * 3 < serde_json::to_vec(&big).expect("json").len());
}

#[test]
fn version_1_json_entries_are_still_read() {
    let answer = answer_with(json!([0.5, -0.25]));
    let json = serde_json::to_vec(&answer).expect("json");
    assert_eq!(embedding_entry::decode(&json).expect("reads"), answer);
    let base64 = answer_with(json!("AAAAPwAAgL4="));
    let json = serde_json::to_vec(&base64).expect("json");
    assert_eq!(embedding_entry::decode(&json).expect("reads"), base64);
}

#[test]
fn answers_of_other_sizes_are_refused() {
    let mut two = float_answer(&[1.0]);
    two.data.push(two.data[0].clone());
    assert_eq!(
        embedding_entry::encode(&two),
        Err(EntryError::NotOneEmbedding(2))
    );
    let mut none = float_answer(&[1.0]);
    none.data.clear();
    assert_eq!(
        embedding_entry::encode(&none),
        Err(EntryError::NotOneEmbedding(0))
    );
    let json = serde_json::to_vec(&two).expect("json");
    assert_eq!(
        embedding_entry::decode(&json),
        Err(EntryError::NotOneEmbedding(2))
    );
}

#[test]
fn damaged_and_foreign_values_are_typed_errors() {
    let entry = embedding_entry::encode(&float_answer(&[1.0, 2.0])).expect("encodes");
    let header = 34;

    // Torn or extended entries: the header's lengths no longer add up.
    for cut in [0, 5, header - 1, header, entry.len() - 1] {
        let torn = &entry[..cut];
        match embedding_entry::decode(torn) {
            Err(EntryError::WrongLength { actual, .. }) => assert_eq!(actual, cut),
            Err(EntryError::UnknownFormat) => assert!(cut < 8, "cut at {cut}"),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let mut longer = entry.to_vec();
    longer.push(0);
    assert_eq!(
        embedding_entry::decode(&longer),
        Err(EntryError::WrongLength {
            expected: entry.len() as u64,
            actual: entry.len() + 1
        })
    );

    // Another version, another vector kind.
    let mut v3 = entry.to_vec();
    v3[8] = 3;
    assert_eq!(
        embedding_entry::decode(&v3),
        Err(EntryError::UnknownVersion(3))
    );
    let mut kind = entry.to_vec();
    kind[9] = 7;
    assert_eq!(
        embedding_entry::decode(&kind),
        Err(EntryError::UnknownVectorKind(7))
    );

    // A float vector of 7 bytes (lengths still adding up).
    let mut partial = entry.to_vec();
    partial[10..14].copy_from_slice(&7u32.to_le_bytes());
    partial[14..18].copy_from_slice(&5u32.to_le_bytes());
    assert_eq!(
        embedding_entry::decode(&partial),
        Err(EntryError::PartialFloat(7))
    );

    // A model that is not UTF-8.
    let mut model = entry.to_vec();
    model[header + 8 + 4] = 0xff;
    assert_eq!(
        embedding_entry::decode(&model),
        Err(EntryError::NotUtf8("model"))
    );

    // Unknown fields that are not a JSON object.
    let mut extra = embedding_entry::encode(&answer_with(json!([1.0])))
        .expect("encodes")
        .to_vec();
    let total = extra.len();
    extra[26..30].copy_from_slice(&2u32.to_le_bytes());
    extra.extend_from_slice(b"[]");
    assert_eq!(extra.len(), total + 2);
    assert!(matches!(
        embedding_entry::decode(&extra),
        Err(EntryError::Json { field: "extra", .. })
    ));

    // Neither format: a chat answer's JSON is a JSON object but not an embeddings answer.
    assert_eq!(
        embedding_entry::decode(b"garbage"),
        Err(EntryError::UnknownFormat)
    );
    assert_eq!(embedding_entry::decode(b""), Err(EntryError::UnknownFormat));
    assert!(matches!(
        embedding_entry::decode(br#"{"choices": []}"#),
        Err(EntryError::Json {
            field: "answer",
            ..
        })
    ));
}
