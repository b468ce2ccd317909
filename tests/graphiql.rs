//! GraphiQL served from the binary: the page, its embedded assets, and `GET /` for browsers. The
//! browser test (`tests/browser/`) checks the page in Chromium; these check the HTTP side.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;

use crate::common::TestApp;

async fn get(app: &TestApp, uri: &str, accept: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut builder = Request::get(uri);
    if let Some(accept) = accept {
        builder = builder.header("accept", accept);
    }
    let (status, headers, body) = app.send(builder.body(Body::empty()).unwrap()).await;
    let body = match body {
        Value::String(s) => s,
        other => other.to_string(),
    };
    (status, headers, body)
}

/// The `src="..."`/`href="..."` values of the page.
fn links(page: &str) -> Vec<String> {
    let mut links = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (start, _) in page.match_indices(attribute) {
            let rest = &page[start + attribute.len()..];
            links.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    links
}

#[tokio::test]
async fn the_page_uses_only_assets_of_this_server() {
    let app = TestApp::new().await;
    let (status, headers, page) = get(&app, "/graphql", Some("text/html,application/xhtml+xml")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(!page.contains("//"), "the page must not reference another host: {page}");

    let links = links(&page);
    assert_eq!(links.len(), 5, "{links:?}");
    for link in links {
        assert!(link.starts_with("graphiql/assets/"), "{link}");
        let (status, headers, body) = get(&app, &format!("/{link}"), None).await;
        assert_eq!(status, StatusCode::OK, "{link}");
        let content_type = headers["content-type"].to_str().unwrap();
        let expected = if link.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(content_type.starts_with(expected), "{link}: {content_type}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let cache = headers["cache-control"].to_str().unwrap();
        if link.ends_with("partnerhub.js") {
            assert_eq!(cache, "no-cache");
        } else {
            assert!(cache.contains("max-age=31536000") && cache.contains("immutable"), "{link}: {cache}");
        }
        assert!(!body.is_empty());
    }
}

#[tokio::test]
async fn the_assets_are_the_vendored_files() {
    let app = TestApp::new().await;
    let vendored: [(&str, &[u8]); 4] = [
        ("react-18.3.1.production.min.js", include_bytes!("../assets/graphiql/react.production.min.js")),
        ("react-dom-18.3.1.production.min.js", include_bytes!("../assets/graphiql/react-dom.production.min.js")),
        ("graphiql-3.9.0.min.js", include_bytes!("../assets/graphiql/graphiql.min.js")),
        ("graphiql-3.9.0.min.css", include_bytes!("../assets/graphiql/graphiql.min.css")),
    ];
    for (name, bytes) in vendored {
        let (status, _, body) = get(&app, &format!("/graphiql/assets/{name}"), None).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(body.as_bytes(), bytes, "{name}");
        // Production builds, no CDN: nothing that would make the browser contact another host.
        for host in
            ["//unpkg.com", "//cdn.jsdelivr.net", "//cdnjs.", "//fonts.googleapis", "//fonts.gstatic", "//esm.sh"]
        {
            assert!(!body.contains(host), "{name} mentions {host}");
        }
        assert!(!body.contains("react.development"), "{name}");
    }
    let (status, _, license) = get(&app, "/graphiql/assets/LICENSE.graphiql", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(license.contains("MIT License"));
    let (status, _, _) = get(&app, "/graphiql/assets/../Cargo.toml", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&app, "/graphiql/assets/nothing.js", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_page_opens_with_the_sample_query_and_the_header_example() {
    let app = TestApp::new().await;
    let (status, _, script) = get(&app, "/graphiql/assets/partnerhub.js", None).await;
    assert_eq!(status, StatusCode::OK);
    for expected in ["customers(first: 10)", "tenantKind", "Bearer <paste a token from the demo banner>", "graphql/ws"]
    {
        assert!(script.contains(expected), "partnerhub.js lacks {expected}");
    }
}

#[tokio::test]
async fn the_root_sends_browsers_to_graphiql() {
    let app = TestApp::new().await;
    let (status, headers, _) = get(&app, "/", Some("text/html,application/xhtml+xml,*/*;q=0.8")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "graphql");
    let (status, _, body) = get(&app, "/", Some("application/json")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("/graphql"), "{body}");
}
