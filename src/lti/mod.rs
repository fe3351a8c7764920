//! What every LTI version and importer shares: the role vocabulary.

pub mod roles;
