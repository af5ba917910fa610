use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{EnvironmentId, Error, Result, Timestamp};

/// What an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// Reads everything it can see; changes nothing.
    Viewer,
    /// Reads, and manages recordings and webhooks; not keys or environments.
    Editor,
    /// Everything.
    Admin,
}

impl Role {
    /// The role's name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    /// Whether a key with this role may do what `needed` may.
    pub fn includes(self, needed: Role) -> bool {
        self >= needed
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "viewer" => Self::Viewer,
            "editor" => Self::Editor,
            "admin" => Self::Admin,
            _ => return Err(Error::invalid("role", "one of admin, editor, viewer")),
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The public part of an API key, by which it is looked up: 16 lowercase base32
/// characters. It appears in the key itself (`pk_<id>_<secret>`) and in logs; the secret
/// never does.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyId(String);

impl ApiKeyId {
    /// A new random id (80 bits: unique, not secret).
    pub fn generate() -> Self {
        Self(crate::id::random_base32()[..16].to_owned())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn validate(s: &str) -> Result<()> {
        if s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        {
            Ok(())
        } else {
            Err(Error::invalid("API key id", "16 characters of a-z and 0-9"))
        }
    }
}

impl FromStr for ApiKeyId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::validate(s)?;
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for ApiKeyId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::validate(&s)?;
        Ok(Self(s))
    }
}

impl From<ApiKeyId> for String {
    fn from(id: ApiKeyId) -> String {
        id.0
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyId({})", self.0)
    }
}

/// An API key as the store holds it: everything but the secret, of which only a hash is
/// kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKey {
    /// Its public id.
    pub id: ApiKeyId,
    /// What it is for, in words.
    pub label: String,
    /// What it may do.
    pub role: Role,
    /// The environments it may see; empty for all.
    pub environments: Vec<EnvironmentId>,
    /// The hash of its secret, as the minting code made it (see `pipe-api`).
    pub secret_hash: String,
    /// When it was made.
    pub created: Timestamp,
    /// When it was revoked, if it was.
    pub revoked: Option<Timestamp>,
}

impl ApiKey {
    /// A key as a store holds it, not revoked.
    pub fn new(
        id: ApiKeyId,
        label: impl Into<String>,
        role: Role,
        environments: Vec<EnvironmentId>,
        secret_hash: impl Into<String>,
        created: Timestamp,
    ) -> Self {
        Self {
            id,
            label: label.into(),
            role,
            environments,
            secret_hash: secret_hash.into(),
            created,
            revoked: None,
        }
    }

    /// Whether the key may see recordings of `environment`.
    pub fn sees(&self, environment: &EnvironmentId) -> bool {
        self.environments.is_empty() || self.environments.contains(environment)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("role", &self.role)
            .field("environments", &self.environments)
            .field("created", &self.created)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

/// API keys, stored by their hash.
///
/// # Contract
///
/// - **Durable.** Once a call returns `Ok`, its effect survives a crash of the process.
/// - **Revocation is immediate.** After [`revoke_api_key`](ApiKeyStore::revoke_api_key)
///   returns, every later [`api_key`](ApiKeyStore::api_key) shows the key revoked.
///   Revoking a revoked key keeps the first revocation time.
/// - **Kept, not forgotten.** A revoked key stays listed (with its revocation time), so
///   the audit trail can name it; its id is never reused.
/// - **Errors.** `AlreadyExists` for an id that exists, `NotFound` for one that does not.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a new key.
    async fn create_api_key(&self, key: ApiKey) -> Result<ApiKey>;

    /// The key with `id`, revoked or not, or `NotFound`.
    async fn api_key(&self, id: &ApiKeyId) -> Result<ApiKey>;

    /// Every key, oldest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;

    /// Revokes the key at `at`; returns it as it is now.
    async fn revoke_api_key(&self, id: &ApiKeyId, at: Timestamp) -> Result<ApiKey>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_power() {
        assert!(Role::Admin.includes(Role::Editor));
        assert!(Role::Editor.includes(Role::Viewer));
        assert!(!Role::Viewer.includes(Role::Editor));
        assert!(!Role::Editor.includes(Role::Admin));
        for role in [Role::Viewer, Role::Editor, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
    }

    #[test]
    fn key_ids_round_trip() {
        let id = ApiKeyId::generate();
        assert_eq!(id.as_str().parse::<ApiKeyId>().unwrap(), id);
        assert!("short".parse::<ApiKeyId>().is_err());
        assert!("ABCDEFGHIJKLMNOP".parse::<ApiKeyId>().is_err());
    }

    #[test]
    fn debug_hides_the_hash() {
        let key = ApiKey::new(
            ApiKeyId::generate(),
            "ci",
            Role::Viewer,
            vec![],
            "deadbeef",
            Timestamp::from_millis(0),
        );
        assert!(!format!("{key:?}").contains("deadbeef"));
    }
}
