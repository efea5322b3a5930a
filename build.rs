//! Puts the hls.js and p2p-media-loader bundles that `npm ci` installed in `web/node_modules`
//! (pinned by `web/package-lock.json`; `scripts/setup` runs it) where `src/serve/player.rs`
//! embeds them, so `swarmpack serve` hands its pages their players without any CDN. Without
//! them the build still succeeds: the player files are empty, and `serve` says how to fix that.
//!
//! p2p-media-loader-hlsjs imports its core by the bare name `p2p-media-loader-core`, which a
//! browser resolves only through an import map; a site embedding the player has none. So the
//! copy here imports `./p2pml-core.js`, the core's file beside it under `/.player/`.

use std::path::PathBuf;

/// (what npm installed, the name it gets in OUT_DIR)
const PLAYER_FILES: [(&str, &str); 4] = [
    ("web/node_modules/hls.js/dist/hls.min.js", "hls.min.js"),
    (
        "web/node_modules/p2p-media-loader-core/dist/p2p-media-loader-core.es.min.js",
        "p2pml-core.js",
    ),
    (
        "web/node_modules/p2p-media-loader-hlsjs/dist/p2p-media-loader-hlsjs.es.min.js",
        "p2pml-hlsjs.js",
    ),
    // Ed25519 for browsers whose WebCrypto has none (pure JS, no dependencies).
    ("web/node_modules/@noble/ed25519/index.js", "ed25519.js"),
];

fn main() {
    println!("cargo::rerun-if-changed=web/package-lock.json");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (from, to) in PLAYER_FILES {
        println!("cargo::rerun-if-changed={from}");
        let bytes = std::fs::read(from).unwrap_or_else(|_| {
            println!(
                "cargo::warning={from} is missing: the preview and watch pages will have no player \
                 (run scripts/setup, or `npm ci` in web/, then rebuild)"
            );
            Vec::new()
        });
        let bytes = if to == "p2pml-hlsjs.js" {
            relative_core_import(bytes, from)
        } else {
            bytes
        };
        std::fs::write(out.join(to), bytes).expect("write a player file to OUT_DIR");
    }
}

/// The hlsjs bundle with `from "p2p-media-loader-core"` made `from "./p2pml-core.js"`. A bundle
/// with no such import (another version of the package) is left alone, with a warning.
fn relative_core_import(bytes: Vec<u8>, from: &str) -> Vec<u8> {
    const BARE: &str = "from \"p2p-media-loader-core\"";
    const RELATIVE: &str = "from \"./p2pml-core.js\"";
    let Ok(text) = String::from_utf8(bytes.clone()) else {
        return bytes;
    };
    if !bytes.is_empty() && !text.contains(BARE) {
        println!(
            "cargo::warning={from} has no `{BARE}`: the player may not load (check build.rs against this version)"
        );
    }
    text.replace(BARE, RELATIVE).into_bytes()
}
