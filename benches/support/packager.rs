//! The packager as `run` builds it for a real match: AES-128 protection with the match's
//! content secret, and signed windows.

use swarmpack::keys::KeyDir;
use swarmpack::package::Packager;
use swarmpack::package::crypt::Aes128;
use swarmpack::profile::Profile;

pub fn encrypted_and_signed(
    match_id: &str,
    profile: &Profile,
    angles: &[String],
    keys: &KeyDir,
) -> Packager {
    let protection = Aes128::new(
        keys.content_secret(),
        match_id,
        &profile.encryption.key_uri_base,
        profile.timeline(),
    );
    Packager::new(match_id, profile, angles, Box::new(protection)).sign_windows(
        profile,
        keys.signer(),
        &keys.public_pem(),
    )
}
