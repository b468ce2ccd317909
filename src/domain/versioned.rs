//! R13, optimistic concurrency: a row changes only if its version is still the one read (and the
//! one the caller expects, when it says). The update is conditional (`WHERE id = ? AND version = ?`)
//! and its affected-row count decides, so two racing updates at one version serialize on both
//! databases: exactly one wins, the other gets `VERSION_CONFLICT` and changes nothing.

use entity::{partner, relationship, subscription, subscription_transfer};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, Iterable, QueryFilter};

use crate::error::{ApiError, ApiResult, Code};

/// `VERSION_CONFLICT` unless `expected` (when given) is the row's current version.
pub fn check_expected(current: i32, expected: Option<i32>, what: &str) -> ApiResult<()> {
    match expected {
        Some(v) if v != current => Err(conflict(what, current)),
        _ => Ok(()),
    }
}

fn conflict(what: &str, current: i32) -> ApiError {
    ApiError::new(
        Code::VersionConflict,
        format!("the {what} changed since you read it (its version is now {current}); read it again and retry"),
    )
}

/// An active model with only the columns whose value differs between `before` and `after` set
/// (the version always does): the `UPDATE` writes those and nothing else.
fn changed_columns<A: ActiveModelTrait>(before: A, after: A) -> A {
    let mut changes = A::default();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        let new = after.get(column).into_value();
        if new != before.get(column).into_value()
            && let Some(value) = new
        {
            changes.set(column, value);
        }
    }
    changes
}

macro_rules! versioned_update {
    ($name:ident, $module:ident, $what:literal) => {
        /// Writes `after` over `before` if `before.version` is still current (and matches
        /// `expected`, when given); returns the stored row with its new version.
        pub async fn $name<C: ConnectionTrait>(
            db: &C,
            before: &$module::Model,
            mut after: $module::Model,
            expected: Option<i32>,
        ) -> ApiResult<$module::Model> {
            check_expected(before.version, expected, $what)?;
            after.version = before.version + 1;
            let result = $module::Entity::update_many()
                .set(changed_columns(before.clone().into_active_model(), after.clone().into_active_model()))
                .filter($module::Column::Id.eq(before.id))
                .filter($module::Column::Version.eq(before.version))
                .exec(db)
                .await
                .map_err(|err| {
                    if super::is_unique_violation(&err) {
                        ApiError::new(
                            Code::Conflict,
                            concat!(
                                "this change would duplicate another ",
                                $what,
                                " (one PENDING request and one ACTIVE link per pair)"
                            ),
                        )
                    } else {
                        err.into()
                    }
                })?;
            if result.rows_affected != 1 {
                return Err(conflict($what, before.version + 1));
            }
            Ok(after)
        }
    };
}

versioned_update!(update_partner, partner, "partner");
versioned_update!(update_subscription, subscription, "subscription");
versioned_update!(update_relationship, relationship, "relationship");
versioned_update!(update_transfer, subscription_transfer, "transfer");
