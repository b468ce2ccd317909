//! Business rules. Each rule has one home here; resolvers only translate.

pub mod lifecycle;
