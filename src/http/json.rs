//! The response body's JSON, written straight from the engine's values: a thin wrap of
//! `serde_json` for the one part that dominates a large answer, the `data` tree.
//!
//! `serde_json` escapes every string byte by byte (a table lookup and a branch per byte) and
//! grows its output by doubling. A page of 50 customers with 10 subscriptions each is about 52 KB
//! of JSON, nearly all of it short strings that need no escaping (ids, names, statuses, times):
//! in an instruction-level profile of that read (`valgrind --tool=callgrind`), serialization was
//! 11.5% of the server's instructions, two thirds of it in the escaping loop, and another 1% was
//! the copies made while the buffer grew. Here a string is first checked for anything JSON
//! escapes (`"`, `\`, control characters) and, when there is nothing, copied in one piece; a
//! string that needs escaping, and every value that is not a string, object, list, boolean or
//! null, is written by `serde_json` itself. So the bytes are `serde_json`'s, which the unit tests
//! check on values built to hit every branch.

use std::collections::BTreeMap;

use async_graphql::{ServerError, Value};

/// Initial capacity of a response body: larger answers grow from here, smaller ones waste a few
/// kilobytes for the moment they are written.
const INITIAL_CAPACITY: usize = 16 * 1024;

/// The body `{"errors":…,"data":…,"extensions":…}`, each member only when present (no `errors`
/// when empty, no `data` for a request error, no `extensions` when empty), in that order: `errors`
/// first, as the GraphQL specification suggests, each error starting with `message` (`ServerError`
/// serializes `message`, `locations`, `path`, `extensions` in that order). Objects keep the order
/// of the selection set (GraphQL spec 7.1): the engine's maps are `IndexMap`s, written in order
/// (a `serde_json::Value` would sort them).
pub fn response_body(
    errors: &[ServerError],
    data: Option<&Value>,
    extensions: &BTreeMap<String, Value>,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    out.push(b'{');
    let mut first = true;
    let mut member = |out: &mut Vec<u8>, name: &str| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    };
    if !errors.is_empty() {
        member(&mut out, "errors");
        serde_json::to_writer(&mut out, errors)?;
    }
    if let Some(data) = data {
        member(&mut out, "data");
        write_value(&mut out, data)?;
    }
    if !extensions.is_empty() {
        member(&mut out, "extensions");
        serde_json::to_writer(&mut out, extensions)?;
    }
    out.push(b'}');
    Ok(out)
}

/// `value` as `serde_json::to_writer` writes it.
pub fn write_value(out: &mut Vec<u8>, value: &Value) -> serde_json::Result<()> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::String(text) => write_str(out, text)?,
        Value::Enum(name) => write_str(out, name)?,
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(fields) => {
            out.push(b'{');
            for (i, (name, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, name)?;
                out.push(b':');
                write_value(out, item)?;
            }
            out.push(b'}');
        }
        // Numbers and bytes: serde_json's own forms.
        other => serde_json::to_writer(&mut *out, other)?,
    }
    Ok(())
}

/// A JSON string: copied in one piece when nothing in it needs escaping, else by `serde_json`.
fn write_str(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    // A fold, not `any`: without the early exit the check compiles to vector compares over 16
    // bytes at a time (`any` went byte by byte, as slow as the escaping loop it replaces).
    if text.bytes().fold(false, |found, b| found | (b < 0x20) | (b == b'"') | (b == b'\\')) {
        return serde_json::to_writer(&mut *out, text);
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use async_graphql::indexmap::IndexMap;
    use async_graphql::{Name, Pos};

    /// What the handler wrote before: the body serialized by `serde_json` through serde.
    #[derive(serde::Serialize)]
    struct Reference<'a> {
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        errors: &'a [ServerError],
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<&'a Value>,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        extensions: &'a BTreeMap<String, Value>,
    }

    fn tricky() -> Value {
        let strings = [
            "",
            "plain",
            "Contoso Ltd. — Zürich 東京",
            "quote \" backslash \\ slash /",
            "controls \u{0} \u{1} \u{8} \t \n \u{b} \u{c} \r \u{1f} \u{7f}",
            "emoji 🚀 and \u{2028}",
        ];
        let mut object = IndexMap::new();
        for (i, s) in strings.iter().enumerate() {
            object.insert(Name::new(format!("s{i}")), Value::String((*s).to_owned()));
        }
        object.insert(Name::new("aliased_key"), Value::Enum(Name::new("ACTIVE")));
        object.insert(Name::new("int"), Value::from(-42));
        object.insert(Name::new("big"), Value::from(u64::MAX));
        object.insert(Name::new("float"), Value::from(1.5e-7));
        object.insert(Name::new("yes"), Value::Boolean(true));
        object.insert(Name::new("no"), Value::Boolean(false));
        object.insert(Name::new("none"), Value::Null);
        object.insert(Name::new("bytes"), Value::Binary(vec![0u8, 1, 255].into()));
        object.insert(Name::new("empty_list"), Value::List(vec![]));
        object.insert(Name::new("empty_object"), Value::Object(IndexMap::new()));
        let inner = Value::Object(object.clone());
        object.insert(Name::new("nested"), Value::List(vec![inner.clone(), Value::Null, inner]));
        Value::Object(object)
    }

    #[test]
    fn bodies_are_byte_for_byte_what_serde_json_writes() {
        let data = tricky();
        let mut error = ServerError::new("bad \"input\"\n", Some(Pos { line: 1, column: 2 }));
        error.path = vec![async_graphql::PathSegment::Field("customers".into())];
        let mut extensions = BTreeMap::new();
        extensions.insert("cost".to_owned(), Value::from(7));
        for errors in [vec![], vec![error]] {
            for data in [None, Some(&data), Some(&Value::Null)] {
                for extensions in [BTreeMap::new(), extensions.clone()] {
                    let ours = response_body(&errors, data, &extensions).unwrap();
                    let reference =
                        serde_json::to_vec(&Reference { errors: &errors, data, extensions: &extensions }).unwrap();
                    assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(reference).unwrap());
                }
            }
        }
    }
}
