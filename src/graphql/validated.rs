//! Documents that passed async-graphql's full validation, so that later requests of the same
//! document are checked in its fast mode.
//!
//! The full ("strict") validation runs 22 rules over the whole document on every request: about a
//! fifth of the server's instructions for `updateSubscription` and for `customer(id:)` under load
//! (callgrind; see the README's performance section). Its outcome depends on the document, on the
//! operation the request names and, through one rule only, on the values of the variables:
//! `ArgumentsOfCorrectType` puts them into the arguments and checks them against the arguments'
//! types. Every other rule reads the document alone, and the document's checks also proved each
//! variable's declared type fit for every place it is used (`VariableInAllowedPosition`). So a
//! document that passed once, for the same operation, passes again whenever each of its variables
//! holds a value of its declared type: [`plain_variables`] says so for the built-in scalars, and
//! any other case (a list, an input object, an enum, a custom scalar, `null`, a missing value)
//! goes through the full validation again, whose errors are then exactly what they always were.
//!
//! The fast mode still works out the cost and the depth from this request's variables (a page
//! size given as a variable is charged at its value), and the cost guard still applies every
//! limit and the budget to them (`graphql::cost`).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::RwLock;

use async_graphql::parser::types::{BaseType, ExecutableDocument};
use async_graphql::{Value as ConstValue, Variables};

use super::document;

/// At most this many documents are remembered; when full, the memory starts again empty (a
/// client sending ever new documents costs them their full validation, as before, and no memory).
const MAX_DOCUMENTS: usize = 1024;
/// Longer documents are not remembered (the bound on the memory: 1024 × 16 KiB).
const MAX_DOCUMENT_BYTES: usize = 16 * 1024;

/// The documents (with the operation a request named) that passed the full validation.
#[derive(Default)]
pub struct Validated {
    /// Keyed by a hash of the text and the operation name, with a random key per process.
    hasher: RandomState,
    known: RwLock<HashMap<u64, Vec<Document>>>,
}

/// A document's text and the operation a request named.
type Document = (Box<str>, Option<Box<str>>);

impl Validated {
    /// Whether `query`, run as `operation`, passed the full validation before.
    pub fn contains(&self, query: &str, operation: Option<&str>) -> bool {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        holds(&known, self.key(query, operation), query, operation)
    }

    /// Remembers that `query`, run as `operation`, passed the full validation.
    pub fn insert(&self, query: &str, operation: Option<&str>) {
        if query.len() > MAX_DOCUMENT_BYTES {
            return;
        }
        let key = self.key(query, operation);
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        // Another request of the same document may have passed meanwhile.
        if holds(&known, key, query, operation) {
            return;
        }
        if known.values().map(Vec::len).sum::<usize>() >= MAX_DOCUMENTS {
            known.clear();
        }
        known.entry(key).or_default().push((query.into(), operation.map(Into::into)));
    }

    /// How many documents are remembered.
    pub fn len(&self) -> usize {
        self.known.read().unwrap_or_else(|p| p.into_inner()).values().map(Vec::len).sum()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key(&self, query: &str, operation: Option<&str>) -> u64 {
        self.hasher.hash_one((query, operation))
    }
}

/// Whether `known` holds `query` run as `operation`, under its `key`.
fn holds(known: &HashMap<u64, Vec<Document>>, key: u64, query: &str, operation: Option<&str>) -> bool {
    known.get(&key).is_some_and(|found| found.iter().any(|(q, o)| &**q == query && o.as_deref() == operation))
}

/// Whether every variable the request's operation declares holds a value of its declared type,
/// for the built-in scalars only (`Int` within 32 bits, `Float`, `String`, `ID` as a string,
/// `Boolean`); `false` for anything else, and when the operation cannot be told.
pub fn plain_variables(doc: &ExecutableDocument, operation: Option<&str>, variables: &Variables) -> bool {
    let Ok(operation) = document::select_operation(doc, operation) else { return false };
    operation.node.variable_definitions.iter().all(|definition| {
        let BaseType::Named(ty) = &definition.node.var_type.node.base else { return false };
        variables.get(&definition.node.name.node).is_some_and(|value| plain_value(ty.as_str(), value))
    })
}

fn plain_value(ty: &str, value: &ConstValue) -> bool {
    match (ty, value) {
        ("Int", ConstValue::Number(n)) => n.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        ("Float", ConstValue::Number(_)) => true,
        ("String" | "ID", ConstValue::String(_)) => true,
        ("Boolean", ConstValue::Boolean(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn variables(json: serde_json::Value) -> Variables {
        Variables::from_json(json)
    }

    const MUTATION: &str = "mutation M($id: ID!, $n: Int!, $note: String, $on: Boolean!, $x: Float!) { __typename }";

    #[test]
    fn variables_of_their_declared_built_in_types_are_plain() {
        let doc = async_graphql::parser::parse_query(MUTATION).unwrap();
        let good = serde_json::json!({"id": "U3Vi", "n": 3, "note": "x", "on": true, "x": 1.5});
        assert!(plain_variables(&doc, None, &variables(good.clone())));
        assert!(plain_variables(&doc, Some("M"), &variables(good.clone())));
        // Another operation name: the document's checks did not cover it.
        assert!(!plain_variables(&doc, Some("Other"), &variables(good.clone())));
        for (name, bad) in [
            ("id", serde_json::json!(5)),
            ("n", serde_json::json!("3")),
            ("n", serde_json::json!(2_147_483_648_i64)),
            ("n", serde_json::json!(1.5)),
            ("note", serde_json::Value::Null),
            ("on", serde_json::json!("true")),
            ("x", serde_json::json!("1.5")),
        ] {
            let mut vars = good.clone();
            vars[name] = bad.clone();
            assert!(!plain_variables(&doc, None, &variables(vars)), "{name} = {bad}");
        }
        let mut missing = good;
        missing.as_object_mut().unwrap().remove("note");
        assert!(!plain_variables(&doc, None, &variables(missing)), "a declared variable left out");
    }

    #[test]
    fn lists_input_objects_and_custom_scalars_are_never_plain() {
        for (query, value) in [
            ("query Q($ids: [ID!]!) { __typename }", serde_json::json!({"ids": ["a"]})),
            ("query Q($f: CustomerFilter) { __typename }", serde_json::json!({"f": {}})),
            ("query Q($t: DateTime!) { __typename }", serde_json::json!({"t": "2026-01-01T00:00:00Z"})),
        ] {
            let doc = async_graphql::parser::parse_query(query).unwrap();
            assert!(!plain_variables(&doc, None, &variables(value)), "{query}");
        }
    }

    #[test]
    fn documents_are_remembered_per_operation_and_within_bounds() {
        let validated = Validated::default();
        validated.insert("query A { a } query B { b }", Some("A"));
        assert!(validated.contains("query A { a } query B { b }", Some("A")));
        assert!(!validated.contains("query A { a } query B { b }", Some("B")));
        assert!(!validated.contains("query A { a } query B { b }", None));
        validated.insert(&"#".repeat(MAX_DOCUMENT_BYTES + 1), None);
        assert_eq!(validated.len(), 1, "a document over the size bound is not remembered");
        for i in 0..MAX_DOCUMENTS {
            validated.insert(&format!("{{ f{i} }}"), None);
        }
        assert!(validated.len() <= MAX_DOCUMENTS);
        assert!(validated.contains(&format!("{{ f{} }}", MAX_DOCUMENTS - 1), None), "the latest is kept");
    }
}
