//! GraphiQL, served by the binary itself: the page (`GET /graphql` from a browser), its assets
//! (`GET /graphiql/assets/{file}`), and `GET /` leading a browser to it.
//!
//! The assets are the production builds of React 18, ReactDOM 18 and GraphiQL 3 vendored under
//! `assets/graphiql/` (see its README: versions, origin, how to update) and embedded at compile time,
//! so the page works offline and contacts no other host; its Content-Security-Policy says so too.
//! Vendored files are served under versioned names with a year-long immutable cache; our own start-up
//! script and the licences are revalidated on each use.

use axum::extract::Path;
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where the assets are served; the page links them relatively (`graphiql/assets/...` from `/graphql`),
/// so it also works behind a reverse proxy that mounts the server under a path prefix.
pub const ASSETS_ROUTE: &str = "/graphiql/assets/{file}";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Versioned names (the version is part of the URL), so a year-long immutable cache is safe.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Names that do not change when their content does: the browser revalidates each time.
const REVALIDATE: &str = "no-cache";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    cache: &'static str,
    bytes: &'static [u8],
}

static ASSETS: &[Asset] = &[
    Asset {
        name: "react-18.3.1.production.min.js",
        content_type: JS,
        cache: IMMUTABLE,
        bytes: include_bytes!("../../assets/graphiql/react.production.min.js"),
    },
    Asset {
        name: "react-dom-18.3.1.production.min.js",
        content_type: JS,
        cache: IMMUTABLE,
        bytes: include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    },
    Asset {
        name: "graphiql-3.9.0.min.js",
        content_type: JS,
        cache: IMMUTABLE,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.js"),
    },
    Asset {
        name: "graphiql-3.9.0.min.css",
        content_type: CSS,
        cache: IMMUTABLE,
        bytes: include_bytes!("../../assets/graphiql/graphiql.min.css"),
    },
    Asset {
        name: "partnerhub.js",
        content_type: JS,
        cache: REVALIDATE,
        bytes: include_bytes!("../../assets/graphiql/partnerhub.js"),
    },
    Asset {
        name: "LICENSE.react",
        content_type: TEXT,
        cache: REVALIDATE,
        bytes: include_bytes!("../../assets/graphiql/LICENSE.react"),
    },
    Asset {
        name: "LICENSE.react-dom",
        content_type: TEXT,
        cache: REVALIDATE,
        bytes: include_bytes!("../../assets/graphiql/LICENSE.react-dom"),
    },
    Asset {
        name: "LICENSE.graphiql",
        content_type: TEXT,
        cache: REVALIDATE,
        bytes: include_bytes!("../../assets/graphiql/LICENSE.graphiql"),
    },
];

/// The page: scripts and styles from this server only (no inline script), requests to this origin only.
/// React sets inline `style` attributes and GraphiQL's fonts are `data:` URLs, hence those two allowances.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>partnerhub GraphiQL</title>
    <link rel="stylesheet" href="graphiql/assets/graphiql-3.9.0.min.css">
    <style>html, body, #graphiql { height: 100%; margin: 0; overflow: hidden; }</style>
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
    <noscript>GraphiQL needs JavaScript. Without it, POST your queries to /graphql.</noscript>
    <script src="graphiql/assets/react-18.3.1.production.min.js"></script>
    <script src="graphiql/assets/react-dom-18.3.1.production.min.js"></script>
    <script src="graphiql/assets/graphiql-3.9.0.min.js"></script>
    <script src="graphiql/assets/partnerhub.js"></script>
  </body>
</html>
"#;

/// The GraphiQL page.
pub fn page() -> Response {
    let mut response =
        ([(CONTENT_TYPE, "text/html; charset=utf-8"), (CACHE_CONTROL, REVALIDATE)], PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// `GET /graphiql/assets/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, [(CONTENT_TYPE, TEXT)], "no such GraphiQL asset\n").into_response();
    };
    (
        [(CONTENT_TYPE, asset.content_type), (CACHE_CONTROL, asset.cache), (X_CONTENT_TYPE_OPTIONS, "nosniff")],
        asset.bytes,
    )
        .into_response()
}

/// `GET /`: a browser is sent to GraphiQL (303, so that nothing caches it as permanent); anything
/// else is told where the API is.
pub async fn root(headers: HeaderMap) -> Response {
    let browser = headers.get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if browser {
        return (StatusCode::SEE_OTHER, [(LOCATION, "graphql")]).into_response();
    }
    (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, TEXT)],
        "partnerhub: the GraphQL API is at /graphql (POST, or GET with ?query=); open /graphql in a browser for GraphiQL\n",
    )
        .into_response()
}
