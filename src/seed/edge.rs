//! The edge seeder (`swarmpack seed`).
