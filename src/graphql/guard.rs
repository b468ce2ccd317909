//! Bounds on a GraphQL document, checked before the engine recurses over it.
//!
//! async-graphql's parser (a pest grammar, 7.2) limits its recursion only for selection sets: a
//! value such as `[[[[…]]]]`, a nested input object or a list type `[[[Int]]]` a few thousand levels
//! deep overflows the thread's stack, and a stack overflow aborts the whole process. So before the
//! parser sees a document, [`check_nesting`] scans it once, without recursion, and refuses any
//! bracket nesting deeper than [`MAX_NESTING`]. After parsing, [`check_expansion`] bounds what the
//! validator and executor will walk once fragments are expanded: a chain of fragment spreads
//! (`...F1` → `...F2` → …) counts as nesting, and fragments that each spread the next one twice
//! (which doubles the work at every step) cannot grow past [`MAX_SELECTIONS`] fields.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned};

use crate::error::Code;

/// Deepest nesting of `{`, `[` and `(` accepted in a document. The standard introspection query
/// needs 11; the parser itself refuses selection sets deeper than 64.
pub const MAX_NESTING: usize = 64;

/// Most fields an operation may select once its fragments are expanded (aliases included).
pub const MAX_SELECTIONS: usize = 5_000;

/// Parses a document within the bounds: the nesting scan, async-graphql's parser, then the
/// expansion walk. The error carries the code a client sees (`GRAPHQL_PARSE_FAILED` for the first
/// two, `GRAPHQL_VALIDATION_FAILED` for the last). The HTTP layer and the engine extension both
/// come through here.
///
/// Documents that pass are remembered ([`DocumentCache`]): clients send the same few documents
/// over and over, and async-graphql's pest parser is the largest single cost of a small operation
/// (11% of the server's CPU for `updateSubscription` in a profile); a copy of the parsed document
/// costs a fraction of that.
pub fn parse(query: &str) -> Result<ExecutableDocument, (Code, String)> {
    let cached = cache().get(query);
    if let Some(document) = cached {
        return Ok(ExecutableDocument::clone(&document));
    }
    check_nesting(query).map_err(|m| (Code::GraphqlParseFailed, m))?;
    let document = async_graphql::parser::parse_query(query)
        .map_err(|e| (Code::GraphqlParseFailed, format!("the document does not parse: {e}")))?;
    check_expansion(&document).map_err(|m| (Code::GraphqlValidationFailed, m))?;
    cache().put(query, &document);
    Ok(document)
}

/// Documents that passed [`parse`], by their exact text: at most [`DocumentCache::MAX_ENTRIES`]
/// documents of at most [`DocumentCache::MAX_QUERY_BYTES`] each (bigger ones are parsed every
/// time), the oldest forgotten first. Process-wide: a document's parse does not depend on who
/// sends it.
pub struct DocumentCache {
    entries: HashMap<Box<str>, std::sync::Arc<ExecutableDocument>>,
    order: std::collections::VecDeque<Box<str>>,
}

impl DocumentCache {
    pub const MAX_ENTRIES: usize = 256;
    pub const MAX_QUERY_BYTES: usize = 8 * 1024;

    fn get(&self, query: &str) -> Option<std::sync::Arc<ExecutableDocument>> {
        self.entries.get(query).cloned()
    }

    fn put(&mut self, query: &str, document: &ExecutableDocument) {
        if query.len() > Self::MAX_QUERY_BYTES || self.entries.contains_key(query) {
            return;
        }
        while self.entries.len() >= Self::MAX_ENTRIES {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        self.order.push_back(query.into());
        self.entries.insert(query.into(), std::sync::Arc::new(document.clone()));
    }
}

fn cache() -> std::sync::MutexGuard<'static, DocumentCache> {
    static CACHE: std::sync::LazyLock<std::sync::Mutex<DocumentCache>> = std::sync::LazyLock::new(|| {
        std::sync::Mutex::new(DocumentCache { entries: HashMap::new(), order: Default::default() })
    });
    // A panic while holding the lock leaves a map that is still consistent: keep using it.
    CACHE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Refuses documents nested deeper than [`MAX_NESTING`], without parsing them.
pub fn check_nesting(query: &str) -> Result<(), String> {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                // Block string: ends at the next `"""` not escaped as `\"""`.
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!(
                        "the document nests brackets deeper than {MAX_NESTING} levels (a fixed limit that protects the parser)"
                    ));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// What a selection set costs to walk once fragments are expanded.
#[derive(Clone, Copy)]
struct Expanded {
    fields: usize,
    depth: usize,
}

/// Refuses documents whose fragment spreads nest deeper than [`MAX_NESTING`] levels, form a cycle,
/// or expand to more than [`MAX_SELECTIONS`] fields in one operation.
pub fn check_expansion(doc: &ExecutableDocument) -> Result<(), String> {
    let mut walker = Walker { doc, done: HashMap::new(), active: Vec::new() };
    for (_, operation) in doc.operations.iter() {
        let expanded = walker.selection_set(&operation.node.selection_set, 0)?;
        if expanded.depth > MAX_NESTING * 2 {
            return Err(format!(
                "selections and fragment spreads nest {} levels deep once expanded; at most {} are allowed",
                expanded.depth,
                MAX_NESTING * 2
            ));
        }
        if expanded.fields > MAX_SELECTIONS {
            return Err(format!(
                "the operation selects {} fields once its fragments are expanded; at most {MAX_SELECTIONS} are allowed",
                expanded.fields
            ));
        }
    }
    Ok(())
}

struct Walker<'a> {
    doc: &'a ExecutableDocument,
    /// Fragments already measured: each is walked once, however often it is spread.
    done: HashMap<&'a str, Expanded>,
    /// Fragments being measured (the spread path), to stop at cycles.
    active: Vec<&'a str>,
}

impl<'a> Walker<'a> {
    fn selection_set(&mut self, set: &'a Positioned<SelectionSet>, level: usize) -> Result<Expanded, String> {
        if level > MAX_NESTING {
            return Err(format!(
                "selections and fragment spreads nest deeper than {MAX_NESTING} levels (a fixed limit)"
            ));
        }
        let mut total = Expanded { fields: 0, depth: 0 };
        for item in &set.node.items {
            let inner = match &item.node {
                Selection::Field(field) => {
                    let sub = self.selection_set(&field.node.selection_set, level + 1)?;
                    Expanded { fields: sub.fields.saturating_add(1), depth: sub.depth }
                }
                Selection::InlineFragment(fragment) => self.selection_set(&fragment.node.selection_set, level + 1)?,
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node, level + 1)?,
            };
            total.fields = total.fields.saturating_add(inner.fields);
            // Every field, inline fragment and spread is one more level for the engine's visitors.
            total.depth = total.depth.max(inner.depth.saturating_add(1));
            if total.fields > MAX_SELECTIONS.saturating_mul(4) {
                // Far past the limit already: stop walking (the caller reports the limit).
                return Ok(total);
            }
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &'a Name, level: usize) -> Result<Expanded, String> {
        if let Some(known) = self.done.get(name.as_str()) {
            return Ok(*known);
        }
        if self.active.contains(&name.as_str()) {
            return Err(format!("fragment `{name}` spreads itself (directly or through other fragments)"));
        }
        // An unknown fragment is the validator's to report; it expands to nothing here.
        let Some(fragment) = self.doc.fragments.get(name) else { return Ok(Expanded { fields: 0, depth: 0 }) };
        self.active.push(name.as_str());
        let expanded = self.selection_set(&fragment.node.selection_set, level);
        self.active.pop();
        let expanded = expanded?;
        self.done.insert(name.as_str(), expanded);
        Ok(expanded)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn brackets_inside_strings_and_comments_do_not_count() {
        let deep = "[".repeat(200);
        let query = format!("{{ __typename # {deep}\n }}");
        assert!(check_nesting(&query).is_ok());
        let query = format!("{{ f(a: \"{deep}\") }}");
        assert!(check_nesting(&query).is_ok());
        let query = format!("{{ f(a: \"\"\"{deep} \\\"\"\" {deep}\"\"\") }}");
        assert!(check_nesting(&query).is_ok());
        let query = format!("{{ f(a: \"\\\"{deep}\") }}");
        assert!(check_nesting(&query).is_ok());
    }

    #[test]
    fn deep_values_are_refused_before_parsing() {
        let query = format!("{{ __typename(x: {}1{}) }}", "[".repeat(65), "]".repeat(65));
        assert!(check_nesting(&query).is_err());
        let query = format!("{{ __typename(x: {}1{}) }}", "[".repeat(60), "]".repeat(60));
        assert!(check_nesting(&query).is_ok());
    }

    /// A remembered document is the same document; the cache stays bounded whatever is sent, and
    /// a document that failed is refused again (failures are not remembered).
    #[test]
    fn parsed_documents_are_remembered_within_bounds() {
        let query = "query Cached($id: ID!) { node(id: $id) { id } }";
        let first = parse(query).unwrap();
        let second = parse(query).unwrap();
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        for n in 0..(DocumentCache::MAX_ENTRIES * 2) {
            parse(&format!("{{ a{n}: __typename }}")).unwrap();
        }
        let big = format!("{{ {} }}", "__typename ".repeat(DocumentCache::MAX_QUERY_BYTES / 10));
        parse(&big).unwrap();
        {
            let cache = cache();
            assert!(cache.entries.len() <= DocumentCache::MAX_ENTRIES);
            assert_eq!(cache.entries.len(), cache.order.len());
            assert!(!cache.entries.contains_key(big.as_str()), "large documents are parsed every time");
        }
        for _ in 0..2 {
            assert!(matches!(parse("{ broken("), Err((Code::GraphqlParseFailed, _))));
        }
    }
}
