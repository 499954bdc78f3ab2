//! The idempotency token of one migration: the same source and target always give the
//! same token, so RunInstances (`ClientToken`) and CopyImage answer the first run's
//! resources to a second run instead of making new ones.

use sha2::{Digest, Sha256};

use crate::model::{InstanceId, Region};

/// RunInstances and CopyImage accept client tokens of up to 64 ASCII characters.
pub const MAX_CLIENT_TOKEN: usize = 64;

/// `migrate-` and 32 hex digits of SHA-256 over the source instance, its region and the
/// target region and zone. Another target is another migration (another token).
pub fn client_token(source: &InstanceId, from: &Region, to: &Region, zone: Option<&str>) -> String {
    let mut h = Sha256::new();
    for part in [
        source.as_str(),
        from.as_str(),
        to.as_str(),
        zone.unwrap_or("*"),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("migrate-{hex}")
}
