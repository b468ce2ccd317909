//! Relay connections: page arguments, `PageInfo`, and one connection/edge pair per node type.

use async_graphql::SimpleObject;

use crate::access::{Cursor, Page, PageArgs, TotalCount};
use crate::config::Limits;
use crate::error::{ApiError, ApiResult};

/// Parses `first`/`after`: `first` defaults to the configured page size and may not exceed the maximum.
pub fn page_args(limits: &Limits, first: Option<i32>, after: Option<String>) -> ApiResult<PageArgs> {
    let first = match first {
        None => limits.default_page_size,
        Some(n) if n < 0 => return Err(ApiError::bad_input("first", "must not be negative")),
        Some(n) if n as u64 > limits.max_page_size => {
            return Err(ApiError::bad_input("first", format!("may not exceed {}", limits.max_page_size)));
        }
        Some(n) => n as u64,
    };
    let after = after.as_deref().map(Cursor::decode).transpose()?;
    Ok(PageArgs { first, after })
}

/// Where a page sits in its list.
#[derive(SimpleObject, Debug, Clone)]
#[graphql(complex)]
pub struct PageInfo {
    /// Whether more items follow this page (ask again with `after: endCursor`).
    pub has_next_page: bool,
    /// Whether this page was asked for with `after` (items precede it).
    pub has_previous_page: bool,
    #[graphql(skip)]
    pub start: Option<Cursor>,
    #[graphql(skip)]
    pub end: Option<Cursor>,
}

/// Cursors are encoded when asked for, not for every row of every page.
#[async_graphql::ComplexObject]
impl PageInfo {
    /// The cursor of the first item of this page.
    async fn start_cursor(&self) -> Option<String> {
        self.start.as_ref().map(Cursor::encode)
    }

    /// The cursor of the last item of this page; pass it as `after` for the next page.
    async fn end_cursor(&self) -> Option<String> {
        self.end.as_ref().map(Cursor::encode)
    }
}

/// Builds a connection from a page of rows, converting each row into its GraphQL node.
pub fn build<M, N, E>(
    page: Page<M>,
    had_after: bool,
    node: impl Fn(M) -> N,
    edge: impl Fn(Cursor, N) -> E,
) -> (Vec<E>, PageInfo, TotalCount) {
    let start = page.items.first().map(|(c, _)| c.clone());
    let end = page.items.last().map(|(c, _)| c.clone());
    let edges = page.items.into_iter().map(|(cursor, row)| edge(cursor, node(row))).collect();
    let info = PageInfo { has_next_page: page.has_next_page, has_previous_page: had_after, start, end };
    (edges, info, page.total)
}

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $conn_doc:literal, $edge_doc:literal) => {
        $crate::graphql::connection::connection!(
            @ $conn, $edge, $node, &$node, Vec<&$node>, $conn_doc, $edge_doc, |node| node, |nodes| nodes
        );
    };
    // Nodes with plain fields (`graphql::plain`): resolved without a future per plain field.
    (fast $conn:ident, $edge:ident, $node:ty, $conn_doc:literal, $edge_doc:literal) => {
        $crate::graphql::connection::connection!(
            @ $conn,
            $edge,
            $node,
            $crate::graphql::plain::Fast<&$node>,
            $crate::graphql::plain::FastList<'_, $node>,
            $conn_doc,
            $edge_doc,
            $crate::graphql::plain::Fast,
            $crate::graphql::plain::FastList
        );
    };
    (@ $conn:ident, $edge:ident, $node:ty, $out:ty, $list:ty, $conn_doc:literal, $edge_doc:literal, $wrap:expr, $wrap_list:expr) => {
        #[doc = $conn_doc]
        pub struct $conn {
            pub edges: Vec<$edge>,
            pub page_info: $crate::graphql::connection::PageInfo,
            pub total: $crate::access::TotalCount,
        }

        #[doc = $conn_doc]
        #[async_graphql::Object]
        impl $conn {
            /// The items of this page, each with its cursor.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            /// The items of this page, without cursors.
            async fn nodes(&self) -> $list {
                ($wrap_list)(self.edges.iter().map(|e| &e.node).collect::<Vec<_>>())
            }

            /// Where this page sits in the list.
            async fn page_info(&self) -> &$crate::graphql::connection::PageInfo {
                &self.page_info
            }

            /// How many items the whole list holds (every page), counting only what the caller may see.
            async fn total_count(&self) -> async_graphql::Result<u64> {
                Ok(self.total.get().await?)
            }
        }

        impl $conn {
            /// Converts a page of rows.
            pub fn from_page<M>(page: $crate::access::Page<M>, had_after: bool, node: impl Fn(M) -> $node) -> Self {
                let (edges, page_info, total) =
                    $crate::graphql::connection::build(page, had_after, node, |cursor, node| $edge { cursor, node });
                Self { edges, page_info, total }
            }
        }

        #[doc = $edge_doc]
        pub struct $edge {
            pub cursor: $crate::access::Cursor,
            pub node: $node,
        }

        #[doc = $edge_doc]
        #[async_graphql::Object]
        impl $edge {
            /// An opaque position in the list; pass it as `after` to continue after this item.
            async fn cursor(&self) -> String {
                self.cursor.encode()
            }

            /// The item.
            async fn node(&self) -> $out {
                ($wrap)(&self.node)
            }
        }
    };
}

pub(crate) use connection;
