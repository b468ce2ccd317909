//! What the cost extension reads from, or adjusts in, a parsed document before the engine
//! validates it: whether the operation only introspects the schema (then the depth limit does not
//! apply, see [`is_introspection_only`]), and a workaround for a validator gap with directives on
//! `__typename` ([`hoist_typename_directives`]), and which validation errors are about the
//! values of variables rather than the document ([`is_bad_variable_value`]).

use std::collections::HashSet;

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, InlineFragment, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::{Pos, Positioned, ServerError};

/// The fields of the query root that read the schema, never data.
const INTROSPECTION_FIELDS: [&str; 3] = ["__schema", "__type", "__typename"];

/// Whether the operation the request runs (`operation_name`, or the document's only operation)
/// is a query that selects nothing but `__schema`, `__type` and `__typename` at its root, through
/// fragments too. Everything below `__schema` and `__type` describes the schema, so such an
/// operation cannot reach data however deep it nests; the standard introspection query nests 15
/// levels (its `TypeRef` fragment follows `ofType` nine times), more than the default depth limit.
pub fn is_introspection_only(doc: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let Ok(operation) = select_operation(doc, operation_name) else { return false };
    operation.node.ty == OperationType::Query
        && only_introspection(doc, &operation.node.selection_set.node, &mut HashSet::new())
}

/// The operation a request runs: the one `operation_name` names, or the document's only one. The
/// error says what `operationName` would be right (the engine's own says only "Unknown operation").
pub fn select_operation<'a>(
    doc: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Result<&'a Positioned<OperationDefinition>, String> {
    let names = || match &doc.operations {
        DocumentOperations::Single(_) => String::new(),
        DocumentOperations::Multiple(ops) => ops.keys().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
    };
    match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), None) => Ok(op),
        (DocumentOperations::Single(_), Some(name)) => Err(format!(
            "the document has no operation named `{name}`: its only operation is anonymous; send no operationName"
        )),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .get(name)
            .ok_or_else(|| format!("the document has no operation named `{name}`; its operations: {}", names())),
        (DocumentOperations::Multiple(ops), None) => match ops.values().next() {
            Some(op) if ops.len() == 1 => Ok(op),
            _ => Err(format!("the document has several operations ({}): name one in operationName", names())),
        },
    }
}

/// Whether the operation called `name` may be the one a request naming `wanted` runs: the one
/// named, or any when the request names none. Checks that must hold whatever the engine selects
/// (no mutation over GET, no subscription over HTTP) ask it of every operation.
pub fn may_be_selected(wanted: Option<&str>, name: Option<&async_graphql::Name>) -> bool {
    match (wanted, name) {
        (Some(wanted), Some(name)) => wanted == name.as_str(),
        _ => true,
    }
}

fn only_introspection<'a>(doc: &'a ExecutableDocument, set: &'a SelectionSet, seen: &mut HashSet<&'a str>) -> bool {
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => INTROSPECTION_FIELDS.contains(&field.node.name.node.as_str()),
        Selection::InlineFragment(fragment) => only_introspection(doc, &fragment.node.selection_set.node, seen),
        Selection::FragmentSpread(spread) => {
            let name = spread.node.fragment_name.node.as_str();
            // A fragment spread twice was already judged; a cycle is the validator's to refuse.
            if !seen.insert(name) {
                return true;
            }
            match doc.fragments.get(name) {
                Some(fragment) => only_introspection(doc, &fragment.node.selection_set.node, seen),
                None => false,
            }
        }
    })
}

/// The first variable of `operation` (the one the request runs) that is declared non-null without a
/// default, and that the request leaves out or sets to `null`, as a message; GraphQL's variable
/// coercion refuses such a request. async-graphql checks a variable's value only where it is used,
/// against the argument's own type, so a `null` for `$n: Int!` passed into a nullable argument
/// (`first: $n`) and ran as if no value were asked for.
pub fn unset_required_variable(
    operation: &Positioned<OperationDefinition>,
    variables: &async_graphql::Variables,
) -> Option<String> {
    operation.node.variable_definitions.iter().find_map(|definition| {
        let definition = &definition.node;
        let unset = variables.get(&definition.name.node).is_none_or(|value| *value == async_graphql::Value::Null);
        (!definition.var_type.node.nullable && definition.default_value.is_none() && unset).then(|| {
            format!(
                "the variable `${}` is declared `{}` and has no value: send one (not null) in `variables`",
                definition.name.node, definition.var_type.node
            )
        })
    })
}

/// Whether an argument's value takes a variable, anywhere inside it (the parser's `Value` type is
/// not exported by async-graphql, so this goes through its const conversion, which fails exactly
/// when it meets a variable).
macro_rules! uses_variable {
    ($value:expr) => {
        $value.clone().into_const_with(|_| Err::<async_graphql::Value, ()>(())).is_err()
    };
}

/// Where the validator reports a bad value of an argument that takes a variable: the argument's
/// name, and the field that has it (the cost computation reads `first` and reports at the field).
/// async-graphql validates arguments with the variables substituted, so a variable of the wrong
/// type fails validation; [`is_bad_variable_value`] tells those errors (bad data) from a broken
/// document.
pub fn variable_argument_positions(doc: &ExecutableDocument) -> HashSet<Pos> {
    let mut positions = HashSet::new();
    let operations: Vec<_> = match &doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values().collect(),
    };
    for op in operations {
        directive_positions(&op.node.directives, &mut positions);
        argument_positions(&op.node.selection_set.node, &mut positions);
    }
    for fragment in doc.fragments.values() {
        directive_positions(&fragment.node.directives, &mut positions);
        argument_positions(&fragment.node.selection_set.node, &mut positions);
    }
    positions
}

fn directive_positions(directives: &[Positioned<Directive>], positions: &mut HashSet<Pos>) {
    for directive in directives {
        for (name, value) in &directive.node.arguments {
            if uses_variable!(value.node) {
                positions.insert(name.pos);
            }
        }
    }
}

fn argument_positions(set: &SelectionSet, positions: &mut HashSet<Pos>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                for (name, value) in &field.node.arguments {
                    if uses_variable!(value.node) {
                        positions.insert(name.pos);
                        positions.insert(field.pos);
                    }
                }
                directive_positions(&field.node.directives, positions);
                argument_positions(&field.node.selection_set.node, positions);
            }
            Selection::InlineFragment(fragment) => {
                directive_positions(&fragment.node.directives, positions);
                argument_positions(&fragment.node.selection_set.node, positions);
            }
            Selection::FragmentSpread(spread) => directive_positions(&spread.node.directives, positions),
        }
    }
}

/// Whether a validation error is about the value a variable brought (bad data, `BAD_USER_INPUT`)
/// rather than about the document: a value error at an argument that takes a variable. A required
/// variable sent without a value is reported by the engine as "Variable n is not defined." at the
/// field; that message is replaced by one that says what to send.
pub fn is_bad_variable_value(error: &mut ServerError, variable_positions: &HashSet<Pos>) -> bool {
    let at_variable = !error.locations.is_empty() && error.locations.iter().all(|pos| variable_positions.contains(pos));
    if !at_variable {
        return false;
    }
    if let Some(name) = error.message.strip_prefix("Variable ").and_then(|m| m.strip_suffix(" is not defined.")) {
        error.message = format!("the variable `${name}` has no value: send one in `variables`");
        return true;
    }
    ["Invalid value for argument", "Expected input type"].iter().any(|p| error.message.starts_with(p))
}

/// Moves `@include`/`@skip` from every `__typename` field onto an inline fragment without type
/// condition that wraps it: `__typename @include(if: $b)` becomes `... @include(if: $b) { __typename }`,
/// which selects exactly the same thing.
///
/// Why: async-graphql 7.2's validator never visits `__typename` fields (`visit_selection` skips
/// them), so the variables their directives use are unseen: `NoUnusedVariables` refuses
/// `query Q($b: Boolean!) { __typename @include(if: $b) }` with "Variable $b is not used", and an
/// undefined or mistyped variable there would go unnoticed. Directives on an inline fragment are
/// visited, so after this rewrite the variable counts as used and is type-checked. Remove when the
/// validator visits the directives of `__typename` (`validation/visitor.rs`).
pub fn hoist_typename_directives(doc: &mut ExecutableDocument) {
    match &mut doc.operations {
        DocumentOperations::Single(op) => hoist_in(&mut op.node.selection_set.node),
        DocumentOperations::Multiple(ops) => {
            for op in ops.values_mut() {
                hoist_in(&mut op.node.selection_set.node);
            }
        }
    }
    for fragment in doc.fragments.values_mut() {
        hoist_in(&mut fragment.node.selection_set.node);
    }
}

fn hoist_in(set: &mut SelectionSet) {
    for item in &mut set.items {
        let pos = item.pos;
        match &mut item.node {
            Selection::Field(field) if field.node.name.node == "__typename" => {
                let (moved, kept) = std::mem::take(&mut field.node.directives)
                    .into_iter()
                    .partition::<Vec<_>, _>(|d| matches!(d.node.name.node.as_str(), "include" | "skip"));
                field.node.directives = kept;
                if moved.is_empty() {
                    continue;
                }
                let field = std::mem::replace(
                    &mut item.node,
                    Selection::InlineFragment(Positioned::new(
                        InlineFragment {
                            type_condition: None,
                            directives: moved,
                            selection_set: Positioned::new(SelectionSet { items: Vec::new() }, pos),
                        },
                        pos,
                    )),
                );
                if let Selection::InlineFragment(fragment) = &mut item.node {
                    fragment.node.selection_set.node.items.push(Positioned::new(field, pos));
                }
            }
            Selection::Field(field) => hoist_in(&mut field.node.selection_set.node),
            Selection::InlineFragment(fragment) => hoist_in(&mut fragment.node.selection_set.node),
            Selection::FragmentSpread(_) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).unwrap()
    }

    #[test]
    fn only_root_introspection_fields_count_as_introspection() {
        assert!(is_introspection_only(&parse("{ __schema { types { name } } __typename }"), None));
        assert!(is_introspection_only(
            &parse("{ ...F } fragment F on Query { __type(name: \"Query\") { name } }"),
            None
        ));
        assert!(!is_introspection_only(&parse("{ __schema { types { name } } customers { totalCount } }"), None));
        assert!(!is_introspection_only(&parse("{ ... on Query { customers { totalCount } } __typename }"), None));
        assert!(!is_introspection_only(&parse("{ ...F } fragment F on Query { customers { totalCount } }"), None));
        assert!(!is_introspection_only(&parse("mutation { __typename }"), None));
        let two = parse("query A { __schema { types { name } } } query B { customers { totalCount } }");
        assert!(is_introspection_only(&two, Some("A")));
        assert!(!is_introspection_only(&two, Some("B")));
        assert!(!is_introspection_only(&two, None));
    }

    #[test]
    fn typename_directives_move_onto_a_fragment() {
        let mut doc = parse("query Q($b: Boolean!) { a: __typename @include(if: $b) customers { __typename } }");
        hoist_typename_directives(&mut doc);
        let op = select_operation(&doc, Some("Q")).unwrap();
        let Selection::InlineFragment(fragment) = &op.node.selection_set.node.items[0].node else {
            panic!("the field is wrapped")
        };
        assert_eq!(fragment.node.directives[0].node.name.node, "include");
        let Selection::Field(field) = &fragment.node.selection_set.node.items[0].node else { panic!("a field") };
        assert_eq!(field.node.alias.as_ref().map(|a| a.node.as_str()), Some("a"));
        assert!(field.node.directives.is_empty());
        assert!(matches!(op.node.selection_set.node.items[1].node, Selection::Field(_)), "other fields stay");
    }
}
