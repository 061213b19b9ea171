//! CBOR to JSON, the way test vectors and the API show bodies: maps with text keys become
//! objects, byte strings become lower-case hex strings, integers stay integers.

use ciborium::Value;
use serde_json::Value as Json;

/// Converts a decoded CBOR value to JSON. Returns `None` for values the protocol never
/// uses (floats, tags, non-text map keys).
pub fn cbor_to_json(value: &Value) -> Option<Json> {
    Some(match value {
        Value::Integer(i) => {
            let i = i128::from(*i);
            if let Ok(u) = u64::try_from(i) {
                Json::from(u)
            } else {
                Json::from(i64::try_from(i).ok()?)
            }
        }
        Value::Bytes(b) => Json::String(hex::encode(b)),
        Value::Text(t) => Json::String(t.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::Null => Json::Null,
        Value::Array(items) => Json::Array(items.iter().map(cbor_to_json).collect::<Option<_>>()?),
        Value::Map(entries) => {
            let mut object = serde_json::Map::new();
            for (k, v) in entries {
                object.insert(k.as_text()?.to_owned(), cbor_to_json(v)?);
            }
            Json::Object(object)
        }
        _ => return None,
    })
}

/// Decodes CBOR body bytes (already checked by the envelope decoder) into JSON.
pub fn body_to_json(body: &[u8]) -> Option<Json> {
    let value: Value = ciborium::from_reader(body).ok()?;
    cbor_to_json(&value)
}
