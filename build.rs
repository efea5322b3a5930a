//! Puts the hls.js and p2p-media-loader bundles that `npm ci` installed in `web/node_modules`
//! (pinned by `web/package-lock.json`; `scripts/setup` runs it) where `src/serve/preview.rs` and
//! `src/serve/watch.rs` embed them, so `swarmpack serve` hands its pages their players without
//! any CDN. Without it the build
//! still succeeds: the player file is empty, and the page and `serve` say how to fix that.

use std::path::PathBuf;

/// (what npm installed, the name it gets in OUT_DIR)
const PLAYER_FILES: [(&str, &str); 3] = [
    ("web/node_modules/hls.js/dist/hls.min.js", "hls.min.js"),
    (
        "web/node_modules/p2p-media-loader-core/dist/p2p-media-loader-core.es.min.js",
        "p2pml-core.js",
    ),
    (
        "web/node_modules/p2p-media-loader-hlsjs/dist/p2p-media-loader-hlsjs.es.min.js",
        "p2pml-hlsjs.js",
    ),
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
        std::fs::write(out.join(to), bytes).expect("write a player file to OUT_DIR");
    }
}
