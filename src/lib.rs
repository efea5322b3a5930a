//! swarmpack: live multi-angle HLS for peer-to-peer tournament streaming.
//!
//! The data flows one way: [`ingest`] (GStreamer: feeds → keyframe-aligned MPEG-TS per rung)
//! → [`package`] (pure: segments, playlists, manifests, torrents) → [`publish`] (spool, then
//! the origin) and [`seed`] (BitTorrent). [`run`] wires one match together. [`profile`] and [`timecode`] are the shared vocabulary.
#![forbid(clippy::print_stdout, clippy::print_stderr)]

pub mod archive;
pub mod audience;
pub mod collect;
pub mod control;
pub mod events;
pub mod hex;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod layout;
pub mod match_id;
pub mod metrics;
pub mod observe;
pub mod package;
pub mod pem;
pub mod private_fs;
pub mod profile;
pub mod publish;
pub mod rendition;
pub mod retry;
pub mod run;
pub mod seed;
pub mod serve;
pub mod sign;
pub mod sync;
pub mod timecode;
pub mod verify;
