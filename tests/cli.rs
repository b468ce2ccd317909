//! The command line as a developer meets it: `token` and the `serve --demo` banner.

use std::process::Command;

use partnerhub::demo;
use serde_json::json;

use crate::common::{SECRET, TestApp};

#[test]
fn token_refuses_an_unknown_role_and_lists_the_known_ones() {
    let output = Command::new(env!("CARGO_BIN_EXE_partnerhub"))
        .args(["token", "--tenant", "00000000-0000-4000-8000-000000000101", "--role", "admin_agnet"])
        .env_remove("PARTNERHUB_JWT_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success(), "a misspelt role must not give a token");
    assert!(output.stdout.is_empty(), "no token printed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("admin_agnet"), "{stderr}");
    for role in
        ["platform_admin", "admin_agent", "sales_agent", "helpdesk_agent", "global_admin", "billing_admin", "reader"]
    {
        assert!(stderr.contains(role), "{role} missing from: {stderr}");
    }
}

#[tokio::test]
async fn token_with_known_roles_signs_in() {
    let output = Command::new(env!("CARGO_BIN_EXE_partnerhub"))
        .args(["token", "--tenant", "00000000-0000-4000-8000-000000000001", "--role", "platform_admin,reader"])
        .env("PARTNERHUB_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap();
    let app = TestApp::new().await;
    let data = app.data(token.trim(), "{ viewer { tenantKind roles } }", json!({})).await;
    assert_eq!(data["viewer"]["roles"], json!(["platform_admin"]), "roles of another tenant kind are ignored");
}

#[tokio::test]
async fn the_demo_banner_prints_each_tenants_name_and_id_next_to_its_token() {
    let app = TestApp::new().await;
    assert!(demo::load(&app.state).await.unwrap());
    let banner = partnerhub::cli::demo_banner("http://127.0.0.1:8080/graphql", SECRET, app.platform()).unwrap();
    let lines: Vec<&str> = banner.lines().collect();
    for tenant in demo::tenants(app.platform()) {
        let at = lines
            .iter()
            .position(|l| l.starts_with('#') && l.contains(tenant.label))
            .unwrap_or_else(|| panic!("{} missing: {banner}", tenant.label));
        assert!(lines[at].contains(&tenant.tenant_id.to_string()), "{}", lines[at]);
        // The token on the next line signs in as that tenant.
        let viewer = app.data(lines[at + 1], "{ viewer { tenantId } }", json!({})).await;
        assert_eq!(viewer["viewer"]["tenantId"], tenant.tenant_id.to_string(), "{}", lines[at]);
    }
}
