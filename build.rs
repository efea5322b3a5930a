//! Puts the hls.js that `npm ci` installed in `web/node_modules` (pinned by
//! `web/package-lock.json`; `scripts/setup` runs it) where `src/serve/preview.rs` embeds it, so
//! `swarmpack serve` hands the preview page its player without any CDN. Without it the build
//! still succeeds: the player file is empty, and the page and `serve` say how to fix that.

use std::path::PathBuf;

const HLS_JS: &str = "web/node_modules/hls.js/dist/hls.min.js";

fn main() {
    println!("cargo::rerun-if-changed={HLS_JS}");
    println!("cargo::rerun-if-changed=web/package-lock.json");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bytes = std::fs::read(HLS_JS).unwrap_or_else(|_| {
        println!(
            "cargo::warning={HLS_JS} is missing: the preview page will have no player \
             (run scripts/setup, or `npm ci` in web/, then rebuild)"
        );
        Vec::new()
    });
    std::fs::write(out.join("hls.min.js"), bytes).expect("write OUT_DIR/hls.min.js");
}
