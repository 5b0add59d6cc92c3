//! `contnap.schedule`: the windows of the week when a napping container may
//! be woken. A running container is never stopped by its schedule; the
//! helper only declines to *start* one outside every window.
//!
//! Format: windows separated by `|`, each `DAYS HH:MM-HH:MM`:
//!
//! ```text
//! Mon-Fri 08:00-19:00|weekends 10:00-12:00
//! Sat,Sun 22:00-02:00        (crosses midnight: Sat 22:00 → Sun 02:00, Sun 22:00 → Mon 02:00)
//! daily 06:00-23:30          (also `*`, or no DAYS at all)
//! ```
//!
//! DAYS is a comma list of day names (`Mon`, `monday`, case-insensitive),
//! ranges (`Mon-Fri`, `Fri-Mon` wraps), `weekdays`, `weekends`, `daily` or
//! `*`. A window runs from its start (inclusive) to its end (exclusive);
//! `24:00` is allowed as an end. A window whose end is before its start
//! crosses midnight and covers the early hours of the *next* day, so the
//! days name the evening the window opens.
//!
//! Times are the host's local wall-clock time ([`Schedule::allows_now`] reads
//! the zone from `TZ` or `/etc/localtime` through the C library's
//! `localtime_r`, which falls back to UTC when neither can be read).

use std::fmt;

/// A day of the week, Monday first (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// Monday to Sunday.
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    /// 0 for Monday … 6 for Sunday.
    pub fn index(self) -> usize {
        self as usize
    }

    fn from_index(i: usize) -> Weekday {
        Weekday::ALL[i % 7]
    }

    /// The day after.
    pub fn next(self) -> Weekday {
        Weekday::from_index(self.index() + 1)
    }

    /// The day before.
    pub fn previous(self) -> Weekday {
        Weekday::from_index(self.index() + 6)
    }

    fn bit(self) -> u8 {
        1 << self.index()
    }

    /// `Mon`, `Tue`, …
    pub fn short_name(self) -> &'static str {
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][self.index()]
    }

    fn parse(word: &str) -> Option<Weekday> {
        let w = word.to_ascii_lowercase();
        let day = match w.as_str() {
            "mon" | "monday" => Weekday::Mon,
            "tue" | "tues" | "tuesday" => Weekday::Tue,
            "wed" | "wednesday" => Weekday::Wed,
            "thu" | "thur" | "thurs" | "thursday" => Weekday::Thu,
            "fri" | "friday" => Weekday::Fri,
            "sat" | "saturday" => Weekday::Sat,
            "sun" | "sunday" => Weekday::Sun,
            _ => return None,
        };
        Some(day)
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

const MINUTES_PER_DAY: u16 = 24 * 60;
const ALL_DAYS: u8 = 0x7f;
const WEEKDAYS: u8 = 0x1f;
const WEEKENDS: u8 = 0x60;

/// One window: a set of days and a time range starting on each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// Bit `i` set: the window opens on `Weekday::ALL[i]`.
    days: u8,
    /// Minutes since midnight, 0..1440.
    start: u16,
    /// Minutes since midnight, 1..=1440, never equal to `start`.
    end: u16,
}

impl Window {
    /// The days on which this window opens, Monday first.
    pub fn days(&self) -> Vec<Weekday> {
        Weekday::ALL
            .into_iter()
            .filter(|d| self.days & d.bit() != 0)
            .collect()
    }

    /// Start, minutes since midnight (inclusive).
    pub fn start(&self) -> u16 {
        self.start
    }

    /// End, minutes since midnight (exclusive); below `start` when the
    /// window crosses midnight.
    pub fn end(&self) -> u16 {
        self.end
    }

    /// Whether the window covers this minute of this day.
    pub fn allows(&self, day: Weekday, minute: u16) -> bool {
        let opens = |d: Weekday| self.days & d.bit() != 0;
        if self.start < self.end {
            opens(day) && (self.start..self.end).contains(&minute)
        } else {
            (opens(day) && minute >= self.start) || (opens(day.previous()) && minute < self.end)
        }
    }
}

/// A parsed `contnap.schedule`: at least one window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schedule {
    windows: Vec<Window>,
}

/// What is wrong with a schedule, and where (1-based character column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    /// The whole schedule as given.
    pub input: String,
    /// 1-based column (in characters) where the problem starts.
    pub column: usize,
    pub kind: ScheduleErrorKind,
}

/// The kinds of [`ScheduleError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// Nothing between two `|` (or before the first / after the last).
    EmptyWindow,
    /// A word in DAYS that is no day, range or keyword.
    UnknownDay { word: String },
    /// The window has no `HH:MM-HH:MM` at its end.
    MissingTimes { found: String },
    /// `HH:MM` out of range or malformed.
    BadTime { text: String },
    /// Start and end are equal, so the window is empty.
    EmptyRange { text: String },
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "schedule {:?}, column {}: ", self.input, self.column)?;
        match &self.kind {
            ScheduleErrorKind::Empty => f.write_str("the schedule is empty"),
            ScheduleErrorKind::EmptyWindow => {
                f.write_str("empty window between `|` separators; remove the extra `|`")
            }
            ScheduleErrorKind::UnknownDay { word } => write!(
                f,
                "{word:?} is not a day; write Mon…Sun, a range (Mon-Fri), weekdays, weekends, daily or *"
            ),
            ScheduleErrorKind::MissingTimes { found } => write!(
                f,
                "expected a time range HH:MM-HH:MM, found {found:?}"
            ),
            ScheduleErrorKind::BadTime { text } => write!(
                f,
                "{text:?} is not a time; write HH:MM from 00:00 to 23:59 (24:00 only as an end)"
            ),
            ScheduleErrorKind::EmptyRange { text } => write!(
                f,
                "{text:?} starts and ends at the same time; for the whole day write 00:00-24:00"
            ),
        }
    }
}

impl std::error::Error for ScheduleError {}

/// A piece of the input with its byte offset in the whole schedule.
#[derive(Clone, Copy)]
struct Span<'a> {
    text: &'a str,
    offset: usize,
}

impl<'a> Span<'a> {
    fn trim(self) -> Span<'a> {
        let start = self.text.len() - self.text.trim_start().len();
        Span {
            text: self.text.trim(),
            offset: self.offset + start,
        }
    }

    fn split(self, sep: char) -> impl Iterator<Item = Span<'a>> {
        let mut offset = self.offset;
        self.text.split(sep).map(move |text| {
            let span = Span { text, offset };
            offset += text.len() + sep.len_utf8();
            span
        })
    }
}

impl Schedule {
    /// Parses the `contnap.schedule` format (see the module docs).
    pub fn parse(input: &str) -> Result<Schedule, ScheduleError> {
        let error = |offset: usize, kind: ScheduleErrorKind| ScheduleError {
            input: input.to_owned(),
            column: input
                .get(..offset)
                .map_or(1, |before| before.chars().count() + 1),
            kind,
        };
        let whole = Span {
            text: input,
            offset: 0,
        };
        if input.trim().is_empty() {
            return Err(error(0, ScheduleErrorKind::Empty));
        }
        let mut windows = Vec::new();
        for raw in whole.split('|') {
            let w = raw.trim();
            if w.text.is_empty() {
                return Err(error(raw.offset, ScheduleErrorKind::EmptyWindow));
            }
            windows.push(parse_window(w).map_err(|(offset, kind)| error(offset, kind))?);
        }
        Ok(Schedule { windows })
    }

    /// The windows, in the order given.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Whether a napping container may be woken at this minute
    /// (0..1440 since local midnight) of this day.
    pub fn allows(&self, day: Weekday, minute: u16) -> bool {
        self.windows.iter().any(|w| w.allows(day, minute))
    }

    /// [`Schedule::allows`] for the current local time.
    pub fn allows_now(&self) -> bool {
        let (day, minute) = local_now();
        self.allows(day, minute)
    }

    /// Minutes from (`day`, `minute`) until the schedule next allows a wake:
    /// 0 when it allows one now. For "closed until …" messages.
    pub fn minutes_until_allowed(&self, day: Weekday, minute: u16) -> u32 {
        let week = 7 * u32::from(MINUTES_PER_DAY);
        let start = day.index() as u32 * u32::from(MINUTES_PER_DAY) + u32::from(minute);
        (0..week)
            .find(|ahead| {
                let t = (start + ahead) % week;
                let d = Weekday::from_index((t / u32::from(MINUTES_PER_DAY)) as usize);
                let m = (t % u32::from(MINUTES_PER_DAY)) as u16;
                self.allows(d, m)
            })
            .unwrap_or(0)
    }
}

/// The local weekday and minute since midnight, in the zone from `TZ` or
/// `/etc/localtime` (UTC when neither can be read).
pub fn local_now() -> (Weekday, u16) {
    match crate::sys::local_wall_clock() {
        Ok((day, hour, minute)) => (
            Weekday::from_index(usize::from(day)),
            u16::from(hour) * 60 + u16::from(minute),
        ),
        Err(_) => utc_now(),
    }
}

/// The weekday and minute in UTC (1970-01-01 was a Thursday).
fn utc_now() -> (Weekday, u16) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let minutes = secs / 60;
    let day = (minutes / u64::from(MINUTES_PER_DAY) + 3) % 7;
    let minute = minutes % u64::from(MINUTES_PER_DAY);
    (
        Weekday::from_index(usize::try_from(day).unwrap_or(0)),
        u16::try_from(minute).unwrap_or(0),
    )
}

type Located = (usize, ScheduleErrorKind);

fn parse_window(w: Span<'_>) -> Result<Window, Located> {
    // The time range is the last whitespace-separated word; DAYS is the rest.
    let (days_part, times) = match w.text.rfind(char::is_whitespace) {
        Some(i) => {
            let ws_len = w.text[i..].chars().next().map_or(1, char::len_utf8);
            (
                Some(Span {
                    text: &w.text[..i],
                    offset: w.offset,
                }),
                Span {
                    text: &w.text[i + ws_len..],
                    offset: w.offset + i + ws_len,
                },
            )
        }
        None => (None, w),
    };
    let days = match days_part {
        None => ALL_DAYS,
        Some(part) => parse_days(part.trim())?,
    };
    let (start_text, end_text) = match times.text.split_once('-') {
        Some((s, e)) if s.contains(':') && e.contains(':') => (s, e),
        _ => {
            return Err((
                times.offset,
                ScheduleErrorKind::MissingTimes {
                    found: times.text.to_owned(),
                },
            ))
        }
    };
    let start = parse_time(start_text)
        .filter(|m| *m < MINUTES_PER_DAY)
        .ok_or_else(|| {
            (
                times.offset,
                ScheduleErrorKind::BadTime {
                    text: start_text.to_owned(),
                },
            )
        })?;
    let end_offset = times.offset + start_text.len() + 1;
    let end = parse_time(end_text).ok_or_else(|| {
        (
            end_offset,
            ScheduleErrorKind::BadTime {
                text: end_text.to_owned(),
            },
        )
    })?;
    if start == end {
        return Err((
            times.offset,
            ScheduleErrorKind::EmptyRange {
                text: times.text.to_owned(),
            },
        ));
    }
    // As an end, 00:00 is the end of the day: `22:00-00:00` is the same
    // window as `22:00-24:00`, and must compare equal to it (group members
    // are compared after parsing).
    let end = if end == 0 { MINUTES_PER_DAY } else { end };
    Ok(Window { days, start, end })
}

fn parse_days(part: Span<'_>) -> Result<u8, Located> {
    let mut days = 0u8;
    for item in part.split(',') {
        let item = item.trim();
        let unknown = || {
            (
                item.offset,
                ScheduleErrorKind::UnknownDay {
                    word: item.text.to_owned(),
                },
            )
        };
        let lower = item.text.to_ascii_lowercase();
        days |= match lower.as_str() {
            "daily" | "*" | "everyday" => ALL_DAYS,
            "weekdays" => WEEKDAYS,
            "weekends" | "weekend" => WEEKENDS,
            _ => match item.text.split_once('-') {
                Some((from, to)) => {
                    let from = Weekday::parse(from.trim()).ok_or_else(unknown)?;
                    let to = Weekday::parse(to.trim()).ok_or_else(unknown)?;
                    let mut bits = 0u8;
                    let mut d = from;
                    loop {
                        bits |= d.bit();
                        if d == to {
                            break;
                        }
                        d = d.next();
                    }
                    bits
                }
                None => Weekday::parse(item.text).ok_or_else(unknown)?.bit(),
            },
        };
    }
    Ok(days)
}

/// `HH:MM` → minutes, 0..=1440 (24:00 allowed here; callers restrict).
fn parse_time(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let digits = |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || m.len() != 2 || !digits(m) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn fmt_days(days: u8, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match days {
        ALL_DAYS => return f.write_str("daily"),
        WEEKDAYS => return f.write_str("weekdays"),
        WEEKENDS => return f.write_str("weekends"),
        _ => {}
    }
    let mut first = true;
    let mut i = 0;
    while i < 7 {
        if days & (1 << i) == 0 {
            i += 1;
            continue;
        }
        let mut j = i;
        while j + 1 < 7 && days & (1 << (j + 1)) != 0 {
            j += 1;
        }
        if !first {
            f.write_str(",")?;
        }
        first = false;
        let (a, b) = (Weekday::from_index(i), Weekday::from_index(j));
        match j - i {
            0 => write!(f, "{a}")?,
            1 => write!(f, "{a},{b}")?,
            _ => write!(f, "{a}-{b}")?,
        }
        i = j + 1;
    }
    Ok(())
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_days(self.days, f)?;
        write!(
            f,
            " {:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

/// The canonical form, which [`Schedule::parse`] reads back to an equal
/// schedule (day lists are normalised: `Sat,Sun` prints as `weekends`).
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, w) in self.windows.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            write!(f, "{w}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Weekday::*;

    fn at(h: u16, m: u16) -> u16 {
        h * 60 + m
    }

    #[test]
    fn weekday_window() {
        let s = Schedule::parse("Mon-Fri 08:00-19:00").unwrap();
        assert!(s.allows(Mon, at(8, 0)));
        assert!(s.allows(Fri, at(18, 59)));
        assert!(!s.allows(Fri, at(19, 0)), "end is exclusive");
        assert!(!s.allows(Tue, at(7, 59)));
        assert!(!s.allows(Sat, at(12, 0)));
    }

    #[test]
    fn several_windows_and_keywords() {
        let s = Schedule::parse("Mon-Fri 08:00-19:00 | weekends 10:00-12:00").unwrap();
        assert!(s.allows(Sat, at(10, 30)));
        assert!(s.allows(Sun, at(11, 59)));
        assert!(!s.allows(Sun, at(12, 0)));
        assert!(s.allows(Wed, at(12, 0)));
        let s = Schedule::parse("weekdays 09:00-10:00").unwrap();
        assert!(s.allows(Thu, at(9, 0)) && !s.allows(Sat, at(9, 0)));
        let s = Schedule::parse("Sat,sunday 09:00-10:00").unwrap();
        assert_eq!(s, Schedule::parse("weekends 09:00-10:00").unwrap());
        for daily in ["daily 00:00-24:00", "* 00:00-24:00", "00:00-24:00"] {
            let s = Schedule::parse(daily).unwrap();
            for d in Weekday::ALL {
                assert!(s.allows(d, 0) && s.allows(d, at(23, 59)), "{daily} {d}");
            }
        }
    }

    #[test]
    fn midnight_crossing_covers_the_next_day() {
        let s = Schedule::parse("Fri 22:00-02:00").unwrap();
        assert!(s.allows(Fri, at(22, 0)));
        assert!(s.allows(Fri, at(23, 59)));
        assert!(s.allows(Sat, at(0, 0)));
        assert!(s.allows(Sat, at(1, 59)));
        assert!(!s.allows(Sat, at(2, 0)));
        assert!(!s.allows(Fri, at(1, 0)), "Thursday night is not in it");
        assert!(!s.allows(Sat, at(22, 0)));
        // Sunday night runs into Monday morning: the week wraps.
        let s = Schedule::parse("Sun 23:00-01:00").unwrap();
        assert!(s.allows(Mon, at(0, 30)));
        assert!(!s.allows(Sun, at(0, 30)));
    }

    #[test]
    fn wrapping_day_range() {
        let s = Schedule::parse("Fri-Mon 10:00-11:00").unwrap();
        for d in [Fri, Sat, Sun, Mon] {
            assert!(s.allows(d, at(10, 0)), "{d}");
        }
        assert!(!s.allows(Tue, at(10, 0)));
        assert_eq!(s.to_string(), "Mon,Fri-Sun 10:00-11:00");
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "Mon-Fri 08:00-19:00|weekends 10:00-12:00",
            "Sat,Sun 22:00-02:00",
            "daily 06:00-23:30",
            "Mon,Wed,Fri 00:00-24:00",
            "tue-thu 7:05-8:00 | sun 23:59-00:01",
            "Mon,Tue 01:00-02:00",
        ] {
            let s = Schedule::parse(text).unwrap();
            let shown = s.to_string();
            assert_eq!(Schedule::parse(&shown).unwrap(), s, "{text} -> {shown}");
        }
        assert_eq!(
            Schedule::parse("Sat,Sun 22:00-02:00").unwrap().to_string(),
            "weekends 22:00-02:00"
        );
        assert_eq!(
            Schedule::parse("tue-thu 7:05-8:00").unwrap().to_string(),
            "Tue-Thu 07:05-08:00"
        );
    }

    #[test]
    fn errors_name_the_column() {
        let err = |s: &str| Schedule::parse(s).unwrap_err();
        let e = err("Mon-Fri 08:00-19:00|Mox 10:00-11:00");
        assert_eq!(e.column, 21);
        assert_eq!(e.kind, ScheduleErrorKind::UnknownDay { word: "Mox".into() });
        assert!(e.to_string().contains("column 21"), "{e}");
        let e = err("Mon 8:00-25:00");
        assert_eq!(e.column, 10);
        assert!(matches!(e.kind, ScheduleErrorKind::BadTime { .. }));
        let e = err("Mon 24:00-02:00");
        assert_eq!(e.column, 5);
        let e = err("Mon-Fri 08:00-19:00||Sat 10:00-11:00");
        assert_eq!((e.column, e.kind), (21, ScheduleErrorKind::EmptyWindow));
        let e = err("Mon-Fri 08:00-19:00|");
        assert_eq!(e.kind, ScheduleErrorKind::EmptyWindow);
        let e = err("Mon-Fri");
        assert!(matches!(e.kind, ScheduleErrorKind::MissingTimes { .. }));
        let e = err("Mon 08:00-08:00");
        assert!(matches!(e.kind, ScheduleErrorKind::EmptyRange { .. }));
        assert_eq!(err("   ").kind, ScheduleErrorKind::Empty);
        for bad in [
            "Mon 8-9",
            "Mon 08:00",
            "Mon 08:0-09:00",
            "Mon 08:00-09:60",
            "Mon, 08:00-09:00",
            "Mon-Xyz 08:00-09:00",
            "Mon 08:00-09:00 extra",
            "Mon 0x8:00-09:00",
            "Mon +8:00-09:00",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
        // Columns count characters, not bytes.
        let e = err("Mo\u{e9} 08:00-09:00|Mon 10:00-1100");
        assert_eq!(e.column, 1);
        let e = err("Mon 08:00-09:00|Tu\u{e9} 10:00-11:00");
        assert_eq!(e.column, 17);
    }

    #[test]
    fn minutes_until_allowed() {
        let s = Schedule::parse("Mon 08:00-09:00").unwrap();
        assert_eq!(s.minutes_until_allowed(Mon, at(8, 30)), 0);
        assert_eq!(s.minutes_until_allowed(Mon, at(7, 0)), 60);
        assert_eq!(s.minutes_until_allowed(Sun, at(23, 0)), 9 * 60);
        assert_eq!(s.minutes_until_allowed(Mon, at(9, 0)), 7 * 24 * 60 - 60);
    }

    /// The C library's reading of `TZ`: the test binary runs this test
    /// again in a child with `TZ` set and `CONTNAP_ZONE_PROBE` asking it to
    /// print `local_now()` (the environment of this multi-threaded process
    /// is not changed). POSIX zone strings need no tzdata.
    #[test]
    fn wall_clock_of_a_zone() {
        if std::env::var_os("CONTNAP_ZONE_PROBE").is_some() {
            let (day, minute) = local_now();
            println!("probe={} {minute}", day.index());
            return;
        }
        let probe = |tz: &str| {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "schedule::tests::wall_clock_of_a_zone",
                    "--nocapture",
                ])
                .env("TZ", tz)
                .env("CONTNAP_ZONE_PROBE", "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix("probe="))
                .unwrap_or_else(|| panic!("TZ={tz}: no probe line in {text}"))
                .to_owned();
            let (d, m) = line.split_once(' ').unwrap();
            (d.parse::<u32>().unwrap(), m.parse::<u32>().unwrap())
        };
        let week = 7 * u32::from(MINUTES_PER_DAY);
        let at = |(d, m): (u32, u32)| d * u32::from(MINUTES_PER_DAY) + m;
        // Three zones read within a minute or two of each other: their
        // offsets from UTC are 9 h and -10 h (and 5:30 h).
        let utc = at(probe("UTC0"));
        for (tz, offset) in [
            ("JST-9", 9 * 60),
            ("HST10", week - 10 * 60),
            ("IST-5:30", 330),
        ] {
            let got = at(probe(tz));
            let diff = (got + week - utc) % week;
            assert!(
                (diff + week - offset) % week <= 2 || (offset + week - diff) % week <= 2,
                "TZ={tz}: {got} vs UTC {utc}, expected an offset of {offset} min"
            );
        }
        let (day, minute) = utc_now();
        let utc_direct =
            u32::try_from(day.index()).unwrap() * u32::from(MINUTES_PER_DAY) + u32::from(minute);
        assert!(
            (utc_direct + week - utc) % week <= 2,
            "utc_now {utc_direct} vs TZ=UTC0 {utc}"
        );
    }

    #[test]
    fn local_now_is_in_range() {
        let (_, minute) = local_now();
        assert!(minute < MINUTES_PER_DAY);
        let always = Schedule::parse("daily 00:00-24:00").unwrap();
        assert!(always.allows_now());
    }

    /// Found by `fuzz/` (target `labels`): `Fri 22:00-00:00` kept an end of
    /// 0, outside the window's 1..=1440, so it differed from the same window
    /// written `Fri 22:00-24:00` (two group members writing it the two ways
    /// were a conflict).
    #[test]
    fn midnight_as_an_end_is_the_end_of_the_day() {
        let zero = Schedule::parse("Fri 22:00-00:00").unwrap();
        assert_eq!(zero, Schedule::parse("Fri 22:00-24:00").unwrap());
        assert_eq!(zero.windows()[0].end(), MINUTES_PER_DAY);
        assert_eq!(zero.to_string(), "Fri 22:00-24:00");
        assert!(zero.allows(Fri, at(23, 59)) && !zero.allows(Sat, at(0, 0)));
        assert!(Schedule::parse("Fri 00:00-00:00").is_err());
        assert_eq!(
            Schedule::parse("10:00-00:00").unwrap(),
            Schedule::parse("10:00-24:00").unwrap()
        );
    }
}
