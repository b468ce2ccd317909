//! GraphQL enums: mirrors of the stored enums (`entity::enums`), converted both ways, so the API's
//! enums are described and versioned here and the entity crate stays free of GraphQL.

use async_graphql::Enum;
use entity::enums as db;

macro_rules! mirror_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($(#[doc = $vdoc:literal])* $variant:ident),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[doc = $vdoc])* $variant,)+
        }

        impl From<db::$name> for $name {
            fn from(value: db::$name) -> Self {
                match value { $(db::$name::$variant => Self::$variant,)+ }
            }
        }

        impl From<$name> for db::$name {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => Self::$variant,)+ }
            }
        }
    };
}

mirror_enum!(
    /// What kind of organisation a tenant is.
    TenantKind {
        /// The program operator (the cloud vendor).
        Platform,
        /// A partner organisation.
        Partner,
        /// A customer organisation.
        Customer,
    }
);

mirror_enum!(
    /// A partner's place in the program.
    PartnerType {
        /// Buys from the vendor and bills its customers itself.
        DirectBill,
        /// Sells through indirect resellers, and bills them.
        IndirectProvider,
        /// Sells through an indirect provider; does not transact itself.
        IndirectReseller,
    }
);

mirror_enum!(
    /// The cloud a partner or customer lives in; the US Government cloud is a world of its own.
    Cloud {
        /// The commercial public cloud.
        Public,
        /// The US Government cloud.
        UsGovernment,
    }
);

mirror_enum!(
    /// Whether a partner may transact.
    PartnerStatus {
        /// The partner may read and transact.
        Active,
        /// The partner may read but not mutate.
        Suspended,
    }
);

mirror_enum!(
    /// How a subscription is billed.
    BillingModel {
        /// Seats, bought for a term (e.g. Microsoft 365).
        LicenseBased,
        /// Metered consumption (e.g. Azure).
        UsageBased,
    }
);

mirror_enum!(
    /// Where a subscription was bought.
    Channel {
        /// Through a Cloud Solution Provider partner.
        Csp,
        /// Directly from the vendor.
        Direct,
        /// Through an Advisor partner.
        Advisor,
        /// Through an Open licensing agreement.
        Open,
        /// Through an Enterprise Agreement.
        EnterpriseAgreement,
        /// Through a third party.
        ThirdParty,
    }
);

mirror_enum!(
    /// The lifecycle state of a subscription.
    SubscriptionStatus {
        /// In use and billed.
        Active,
        /// Temporarily stopped by its partner of record.
        Suspended,
        /// Ended by a cancellation; never comes back.
        Cancelled,
        /// Ended at `termEnd` without renewal.
        Expired,
    }
);

mirror_enum!(
    /// The kind of a relationship.
    RelationshipKind {
        /// Partner ↔ customer: the partner may sell CSP subscriptions to the customer.
        Reseller,
        /// Partner ↔ customer: time-limited, role-scoped administration of the customer's tenant.
        DelegatedAdmin,
        /// Indirect provider ↔ indirect reseller.
        IndirectReseller,
    }
);

mirror_enum!(
    /// The lifecycle state of a relationship.
    RelationshipStatus {
        /// Requested, not yet answered.
        Pending,
        /// Accepted and in force.
        Active,
        /// Refused by the invited party.
        Declined,
        /// Ended by one of the parties.
        Terminated,
        /// Ended by the clock (a grant past `expiresAt`, or a request unanswered for too long).
        Expired,
    }
);

mirror_enum!(
    /// The lifecycle state of a subscription transfer.
    TransferStatus {
        /// Requested by the target partner, not yet answered.
        Pending,
        /// Accepted: the target is now partner of record.
        Completed,
        /// Refused by the source partner.
        Rejected,
        /// Withdrawn by the target partner.
        Withdrawn,
        /// Unanswered for 30 days.
        Expired,
    }
);

/// The order of a list.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OrderDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// What a customer list can be ordered by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CustomerOrderField {
    /// The company name.
    CompanyName,
    /// When the customer was created.
    #[default]
    CreatedAt,
}
