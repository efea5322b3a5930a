//! Walking a match's hash chain on the origin: from the newest window `live.json` names back
//! towards the first, each manifest read with its signature and checked against the link of
//! the one after it ([`chain::check`]). The one walk `archive` and a restart's fallback use;
//! what to do with each link is the caller's.
//!
//! Calls the origin reader and the pure chain rules.

use super::{Origin, OriginError};
use crate::package::chain::{self, Link, LinkError};
use crate::package::manifest::WindowManifest;

/// One link of the walk.
pub enum Found {
    /// The manifest holds: signed, of this match and window, with the expected hash.
    Checked { link: Link, doc: WindowManifest },
    /// The origin does not hold the manifest (or its signature) the chain links to.
    Missing { link: Link, path: String },
    /// The origin holds one, but it does not hold as a link.
    Broken {
        link: Link,
        path: String,
        error: LinkError,
    },
}

/// Walks from `head` while `visit` says go on (true) and the chain goes on; a missing or
/// broken link is visited and ends the walk. Errors only when the origin cannot be read.
pub async fn walk(
    origin: &Origin,
    match_id: &str,
    head: Option<Link>,
    public_key: &[u8],
    mut visit: impl FnMut(Found) -> bool,
) -> Result<(), OriginError> {
    let mut next = head;
    while let Some(link) = next.take() {
        let path = crate::layout::in_match(match_id, &link.path());
        // A missing signature is read as empty: the link is broken (its signature).
        let Some((file, sig)) = origin.get_signed(&path).await? else {
            visit(Found::Missing { link, path });
            return Ok(());
        };
        match chain::check(match_id, &link, &file, &sig, public_key) {
            Ok((doc, prev)) => {
                next = prev;
                if !visit(Found::Checked { link, doc }) {
                    return Ok(());
                }
            }
            Err(error) => {
                visit(Found::Broken { link, path, error });
                return Ok(());
            }
        }
    }
    Ok(())
}
