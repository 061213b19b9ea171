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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cbor_value_the_protocol_uses_has_its_json() {
        let value = Value::Map(vec![
            (Value::Text("n".into()), Value::Integer((-3).into())),
            (Value::Text("u".into()), Value::Integer(7.into())),
            (Value::Text("b".into()), Value::Bytes(vec![0xab, 0x01])),
            (Value::Text("t".into()), Value::Text("x".into())),
            (Value::Text("f".into()), Value::Bool(false)),
            (Value::Text("z".into()), Value::Null),
            (
                Value::Text("a".into()),
                Value::Array(vec![Value::Bool(true)]),
            ),
        ]);
        assert_eq!(
            cbor_to_json(&value),
            Some(serde_json::json!({
                "n": -3, "u": 7, "b": "ab01", "t": "x", "f": false, "z": null, "a": [true]
            }))
        );
        assert_eq!(cbor_to_json(&Value::Float(1.5)), None, "no floats");
        let int_key = Value::Map(vec![(Value::Integer(1.into()), Value::Null)]);
        assert_eq!(cbor_to_json(&int_key), None, "text keys only");
    }
}
