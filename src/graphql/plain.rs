//! Plain fields without a future each: a thin wrap of async-graphql's object resolution for the
//! nodes of pages.
//!
//! async-graphql resolves every selected field of an object as a boxed future of its own, polled
//! through a `FuturesUnordered` (an `Arc`'d task per field) with a context and a path node each,
//! even for a field that only copies a column of the row. A page of 50 customers with 10
//! subscriptions each selects about 1,500 such fields; in profiles of that read this machinery was
//! the largest share of the server's time. [`Fast`] wraps a node type and resolves its *plain*
//! fields (those [`PlainFields::plain_field`] answers: no arguments, no database, no error) in
//! place, in query order, and only the others (nested connections, references) as futures,
//! exactly as async-graphql would. The schema does not change: `Fast<T>` is `T` to the registry.
//!
//! Anything this does not cover falls back to async-graphql's own resolution: fragments, custom
//! field directives (`@skip`/`@include` are already applied by async-graphql before execution), a
//! response key selected twice (async-graphql merges those), a selection of more than 32 fields.
//! Extensions' `resolve` hooks do not see plain fields: the schema's one extension
//! (`graphql::cost`) has none, and the schema that executes operations has no extension at all.
//! The test `queries::plain_fields_answer_as_async_graphql_does` compares every plain field of
//! every node type with the same field selected through a fragment (the fallback).

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{ContainerType, resolve_container, resolve_list};
use async_graphql::{ContextSelectionSet, EnumType, Name, OutputType, Positioned, ScalarType, ServerResult, Value};

/// A node type some of whose fields are plain copies of its row.
pub trait PlainFields: ContainerType {
    /// The value of the field called `name` (its GraphQL name) if it is a plain field, else `None`
    /// (then async-graphql resolves it). Must answer exactly what the field's resolver answers.
    fn plain_field(&self, name: &str) -> Option<Value>;
}

/// `T` as GraphQL sees it, with its plain fields resolved in place.
pub struct Fast<T>(pub T);

impl<T: PlainFields> OutputType for Fast<&T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn introspection_type_name(&self) -> Cow<'static, str> {
        self.0.introspection_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, _field: &Positioned<Field>) -> ServerResult<Value> {
        resolve(ctx, self.0).await
    }
}

/// The nodes of a page (`nodes { … }`), as GraphQL sees `[T!]!`. When every field the selection
/// names is plain, each node is answered in place, one after the other: no future, no path node
/// and no join over the items, which async-graphql's list resolution makes for every item (a page
/// of 50 customers' subscriptions is about 250 of them). Otherwise the list is resolved exactly as
/// async-graphql resolves `Vec<Fast<&T>>` (its own `resolve_list`), each node as [`Fast`] does. A
/// plain field never fails, so an answer in place has no error whose path would name an item.
pub struct FastList<'a, T>(pub Vec<&'a T>);

impl<T: PlainFields + Sync> OutputType for FastList<'_, T> {
    fn type_name() -> Cow<'static, str> {
        <Vec<Fast<&T>> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<Fast<&T>> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<Fast<&T>> as OutputType>::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        // The selection is the same for every node: its shape is checked once.
        // Whether a field is plain depends on its name alone, so a node that is not all plain is
        // the first one, and the collection stops there.
        let in_place = in_place_fields(ctx)
            .and_then(|fields| self.0.iter().map(|node| all_plain(&fields, *node)).collect::<Option<Vec<_>>>());
        if let Some(values) = in_place {
            return Ok(Value::List(values));
        }
        let nodes = self.0.iter().map(|node| Fast(*node));
        resolve_list(ctx, field, nodes, Some(self.0.len())).await
    }
}

/// The selection's fields, each with its response key, if the selection is one that is answered
/// in place: fields only (no fragments), without directives (`@skip`/`@include` are applied
/// before this runs; any other is the client's own), each response key once (async-graphql merges
/// repeated keys), and at most [`MAX_IN_PLACE_SELECTION`] of them (the check for repeated keys is
/// quadratic; a wider selection, a hostile document of aliases say, takes async-graphql's path,
/// which is linear). `None` otherwise: async-graphql resolves it.
fn in_place_fields<'a>(ctx: &ContextSelectionSet<'a>) -> Option<Vec<(&'a Name, &'a Positioned<Field>)>> {
    let items = &ctx.item.node.items;
    if items.len() > MAX_IN_PLACE_SELECTION {
        return None;
    }
    let mut fields: Vec<(&'a Name, &'a Positioned<Field>)> = Vec::with_capacity(items.len());
    for selection in items {
        let Selection::Field(field) = &selection.node else { return None };
        let key = &field.node.response_key().node;
        if !field.node.directives.is_empty() || fields.iter().any(|(k, _)| *k == key) {
            return None;
        }
        fields.push((key, field));
    }
    Some(fields)
}

/// The value of `root`'s field `name` if it is plain (`__typename` is).
fn plain_value<T: PlainFields>(root: &T, name: &str) -> Option<Value> {
    if name == "__typename" {
        Some(Value::String(root.introspection_type_name().into_owned()))
    } else {
        root.plain_field(name)
    }
}

/// `root`'s answer when every one of `fields` is plain; `None` otherwise.
fn all_plain<T: PlainFields>(fields: &[(&Name, &Positioned<Field>)], root: &T) -> Option<Value> {
    let mut map = IndexMap::with_capacity(fields.len());
    for (key, field) in fields {
        map.insert((*key).clone(), plain_value(root, field.node.name.node.as_str())?);
    }
    Some(if map.is_empty() { Value::Null } else { Value::Object(map) })
}

/// A scalar's value as async-graphql answers it.
pub fn scalar<T: ScalarType>(value: &T) -> Value {
    value.to_value()
}

/// An optional scalar's value (`null` when absent).
pub fn optional<T: ScalarType>(value: &Option<T>) -> Value {
    value.as_ref().map_or(Value::Null, ScalarType::to_value)
}

/// An enum's value.
pub fn enumeration<T: EnumType>(value: T) -> Value {
    async_graphql::resolver_utils::enum_value(value)
}

/// The widest selection resolved in place (every node type here has fewer fields).
const MAX_IN_PLACE_SELECTION: usize = 32;

/// Resolves `root`'s selection: plain fields in place, the others as async-graphql does.
async fn resolve<'a, T: PlainFields>(ctx: &ContextSelectionSet<'a>, root: &'a T) -> ServerResult<Value> {
    let Some(fields) = in_place_fields(ctx) else {
        return resolve_container(ctx, root).await;
    };
    // One slot per selected field, in query order: its value now, or `None` for a future's.
    let mut slots: Vec<(&'a Name, Option<Value>)> = Vec::with_capacity(fields.len());
    let mut deferred = Vec::new();
    for (key, field) in fields {
        let plain = plain_value(root, field.node.name.node.as_str());
        if plain.is_none() {
            deferred.push(async move {
                let ctx_field = ctx.with_field(field);
                root.resolve_field(&ctx_field).await
            });
        }
        slots.push((key, plain));
    }
    // The futures' results, in the order of their slots.
    let mut resolved = futures_util::future::join_all(deferred).await.into_iter();
    let mut map = IndexMap::with_capacity(slots.len());
    for (key, slot) in slots {
        match slot {
            Some(value) => {
                map.insert(key.clone(), value);
            }
            // As async-graphql's own resolution: a field that failed is left out, its error recorded.
            None => match resolved.next() {
                Some(Ok(value)) => {
                    map.insert(key.clone(), value.unwrap_or_default());
                }
                Some(Err(error)) => ctx.add_error(error),
                None => {}
            },
        }
    }
    Ok(if map.is_empty() { Value::Null } else { Value::Object(map) })
}
