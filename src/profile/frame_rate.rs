//! Frame rates as broadcast has them: whole (25, 30, 50, 60) and the NTSC family at
//! 1000/1001 of them (23.976, 29.97, 59.94, 119.88), exact as fractions, so a 2.002 s segment
//! at 29.97 fps is exactly 60 frames and the epoch lock stays exact.
//!
//! A leaf: calls no other room.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    /// 1, or 1001 for the NTSC rates.
    pub den: u32,
}

/// The NTSC rates, as written in profiles and as fractions.
const NTSC: [(&str, u32); 5] = [
    ("23.976", 24000),
    ("29.97", 30000),
    ("47.952", 48000),
    ("59.94", 60000),
    ("119.88", 120000),
];

impl FrameRate {
    pub const fn whole(fps: u32) -> FrameRate {
        FrameRate { num: fps, den: 1 }
    }

    /// `30`, `29.97`, `59.94` or `"60000/1001"`, as a profile writes it; the error says what
    /// is accepted.
    pub fn parse(value: &toml::Value) -> Result<FrameRate, String> {
        let expected = "a whole frame rate from 1 to 120, or 23.976, 29.97, 59.94, 119.88 \
                        (or \"30000/1001\", \"60000/1001\", …)";
        let rate = match value {
            toml::Value::Integer(n) if (1..=120).contains(n) => Some(FrameRate::whole(*n as u32)),
            toml::Value::Float(f) => NTSC
                .iter()
                .find(|(text, _)| (text.parse::<f64>().unwrap_or(0.0) - f).abs() < 1e-9)
                .map(|(_, num)| FrameRate {
                    num: *num,
                    den: 1001,
                })
                .or_else(|| {
                    (f.fract() == 0.0 && (1.0..=120.0).contains(f))
                        .then(|| FrameRate::whole(*f as u32))
                }),
            toml::Value::String(s) => {
                let (n, d) = s.split_once('/').unwrap_or((s, "1"));
                match (n.trim().parse::<u32>(), d.trim().parse::<u32>()) {
                    (Ok(n), Ok(1)) if (1..=120).contains(&n) => Some(FrameRate::whole(n)),
                    (Ok(n), Ok(1001)) if NTSC.iter().any(|(_, x)| *x == n) => {
                        Some(FrameRate { num: n, den: 1001 })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        rate.ok_or_else(|| format!("{expected}, not {value}"))
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// As GStreamer caps write it: `30/1`, `30000/1001`.
    pub fn caps(self) -> String {
        format!("{}/{}", self.num, self.den)
    }

    /// The whole frame rate at or above this one (for H.264 level limits).
    pub fn ceil(self) -> u32 {
        self.num.div_ceil(self.den)
    }

    /// Frames in `ms` milliseconds, when they are a whole number.
    pub fn frames_in(self, ms: u64) -> Option<u64> {
        let n = ms * self.num as u64;
        let d = 1000 * self.den as u64;
        n.is_multiple_of(d).then(|| n / d)
    }

    /// Whether `self` is a whole multiple of `slower` (so `videorate` only drops frames,
    /// every other one at 2x: 59.94 into 29.97).
    pub fn is_multiple_of(self, slower: FrameRate) -> bool {
        let (a, b) = (
            self.num as u64 * slower.den as u64,
            slower.num as u64 * self.den as u64,
        );
        a >= b && a.is_multiple_of(b)
    }

    /// Segment durations from 1 to 6 s that hold a whole number of frames, nearest to `ms`
    /// first (at most three), for error messages.
    pub fn nearest_durations(self, ms: u64) -> Vec<String> {
        let mut valid: Vec<u64> = (1000..=6000)
            .filter(|m| self.frames_in(*m).is_some())
            .collect();
        valid.sort_by_key(|m| m.abs_diff(ms));
        valid.truncate(3);
        valid.sort();
        valid
            .into_iter()
            .map(|m| format!("{}", m as f64 / 1000.0))
            .collect()
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NTSC
            .iter()
            .find(|(_, n)| self.den == 1001 && *n == self.num)
        {
            Some((text, _)) => f.write_str(text),
            None if self.den == 1 => write!(f, "{}", self.num),
            None => write!(f, "{}/{}", self.num, self.den),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FrameRate, String> {
        let v: toml::Table = toml::from_str(&format!("fps = {text}")).unwrap();
        FrameRate::parse(&v["fps"])
    }

    #[test]
    fn profiles_write_rates_three_ways() {
        let ntsc = FrameRate {
            num: 60000,
            den: 1001,
        };
        assert_eq!(parse("59.94"), Ok(ntsc));
        assert_eq!(parse("\"60000/1001\""), Ok(ntsc));
        assert_eq!(parse("30"), Ok(FrameRate::whole(30)));
        assert_eq!(parse("25.0"), Ok(FrameRate::whole(25)));
        assert_eq!(parse("\"50/1\""), Ok(FrameRate::whole(50)));
        for bad in ["29.9", "0", "121", "\"30000/1000\"", "\"x\"", "true"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ntsc.to_string(), "59.94");
        assert_eq!(ntsc.caps(), "60000/1001");
        assert_eq!(ntsc.ceil(), 60);
    }

    #[test]
    fn segments_hold_whole_frames_exactly() {
        let ntsc30 = FrameRate {
            num: 30000,
            den: 1001,
        };
        assert_eq!(ntsc30.frames_in(2002), Some(60));
        assert_eq!(ntsc30.frames_in(2000), None);
        assert_eq!(
            FrameRate {
                num: 60000,
                den: 1001
            }
            .frames_in(2002),
            Some(120)
        );
        assert_eq!(FrameRate::whole(25).frames_in(2000), Some(50));
        assert_eq!(ntsc30.nearest_durations(2000), ["1.001", "2.002", "3.003"]);
    }

    #[test]
    fn only_whole_multiples_cascade() {
        let n60 = FrameRate {
            num: 60000,
            den: 1001,
        };
        let n30 = FrameRate {
            num: 30000,
            den: 1001,
        };
        assert!(n60.is_multiple_of(n30));
        assert!(n30.is_multiple_of(n30));
        assert!(!n30.is_multiple_of(n60));
        assert!(!FrameRate::whole(60).is_multiple_of(n30));
        assert!(FrameRate::whole(50).is_multiple_of(FrameRate::whole(25)));
    }
}
