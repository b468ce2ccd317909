//! Enumerations shared by the tables, stored as text.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum $name {
            $(#[sea_orm(string_value = $text)] $variant,)+
        }

        impl $name {
            /// The text stored in the database (and used in GraphQL).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }

            /// The variant stored as `text`, if any.
            pub fn from_text(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

text_enum!(
    /// What kind of organisation a tenant is.
    TenantKind { Platform = "PLATFORM", Partner = "PARTNER", Customer = "CUSTOMER" }
);
text_enum!(
    /// The partner's place in the program.
    PartnerType { DirectBill = "DIRECT_BILL", IndirectProvider = "INDIRECT_PROVIDER", IndirectReseller = "INDIRECT_RESELLER" }
);
text_enum!(
    /// The cloud a tenant lives in; the US Government cloud is a world of its own.
    Cloud { Public = "PUBLIC", UsGovernment = "US_GOVERNMENT" }
);
text_enum!(
    /// Whether a partner may transact.
    PartnerStatus { Active = "ACTIVE", Suspended = "SUSPENDED" }
);
text_enum!(
    /// How a subscription is billed.
    BillingModel { LicenseBased = "LICENSE_BASED", UsageBased = "USAGE_BASED" }
);
text_enum!(
    /// Where a subscription was bought.
    Channel {
        Csp = "CSP",
        Direct = "DIRECT",
        Advisor = "ADVISOR",
        Open = "OPEN",
        EnterpriseAgreement = "ENTERPRISE_AGREEMENT",
        ThirdParty = "THIRD_PARTY",
    }
);
text_enum!(
    /// Lifecycle state of a subscription.
    SubscriptionStatus { Active = "ACTIVE", Suspended = "SUSPENDED", Cancelled = "CANCELLED", Expired = "EXPIRED" }
);
text_enum!(
    /// The kind of a relationship.
    RelationshipKind { Reseller = "RESELLER", DelegatedAdmin = "DELEGATED_ADMIN", IndirectReseller = "INDIRECT_RESELLER" }
);
text_enum!(
    /// Lifecycle state of a relationship.
    RelationshipStatus {
        Pending = "PENDING",
        Active = "ACTIVE",
        Declined = "DECLINED",
        Terminated = "TERMINATED",
        Expired = "EXPIRED",
    }
);
text_enum!(
    /// Lifecycle state of a subscription transfer.
    TransferStatus {
        Pending = "PENDING",
        Completed = "COMPLETED",
        Rejected = "REJECTED",
        Withdrawn = "WITHDRAWN",
        Expired = "EXPIRED",
    }
);
