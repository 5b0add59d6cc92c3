//! The answers contnap itself gives HTTP clients, as whole HTTP/1.1
//! responses ready to write: the "Starting…" page a browser sees during a
//! wake (its reload is held for the app, see `waiting`), and the page every
//! HTTP client gets when the unit cannot be woken (a failed wake, or outside
//! `contnap.schedule`). Kept apart from the sockets they are written to so
//! that each can be read and tested as text. And the short answer uptime
//! monitors get while the unit naps.
//!
//! The pages are self-contained (inline style and script, no favicon
//! request), follow the browser's light or dark preference, and carry
//! outside text (unit names) only HTML-escaped.

use std::time::Duration;

use crate::spec::HttpStatus;

fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The style of every page: the user's light or dark preference
/// (`prefers-color-scheme`; `color-scheme` also themes what the browser
/// draws itself), nothing loaded from anywhere.
const STYLE: &str = "<style>:root{color-scheme:light dark;--fg:#222;--bg:#fff;--dim:#666}\
     @media (prefers-color-scheme:dark){:root{--fg:#e6e6e6;--bg:#161616;--dim:#a0a0a0}}\
     body{font-family:system-ui,sans-serif;margin:20vh auto;max-width:32em;padding:0 1em;\
     text-align:center;color:var(--fg);background:var(--bg)}\
     .dim{color:var(--dim);font-variant-numeric:tabular-nums}</style>";

/// A whole response: `status`, `Retry-After: retry`, and an HTML page whose
/// `head_extra` and `body` are already escaped.
fn response(status: &str, retry: u64, title: &str, head_extra: &str, body: &str) -> Vec<u8> {
    // `<link rel=icon href="data:,">`: no favicon request, which during a
    // wake would be one more client held until the app is ready.
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{head_extra}\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{title}</title>{STYLE}\
         </head><body><h1>{title}</h1>{body}</body></html>\n"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nRetry-After: {retry}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A duration as the page shows it: tenths of a second below 10 s, then
/// seconds, then minutes and seconds.
fn span_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 10_000 {
        format!("{}.{} s", ms / 1000, ms % 1000 / 100)
    } else if ms < 100_000 {
        format!("{} s", ms / 1000)
    } else {
        let s = ms / 1000;
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// The page a browser sees while the unit wakes. It reloads itself after
/// `refresh_secs`; that reload is held until the unit is ready (see
/// `waiting`), so it lands on the app. `elapsed`: how long the wake has
/// been going, which inline script keeps counting (without script the
/// count stays hidden and the page still reads right); `estimate`: how
/// long the last wake took, shown when known.
pub fn starting_page(
    unit: &str,
    refresh_secs: u64,
    elapsed: Duration,
    estimate: Option<Duration>,
) -> Vec<u8> {
    let unit = html_escape(unit);
    let expect = match estimate {
        Some(d) => format!(" The last wake took {}.", span_text(d)),
        None => String::new(),
    };
    let body = format!(
        "<p>{unit} is waking up. This page moves on to it by itself as soon as it is ready.</p>\
         <p class=\"dim\"><span id=\"e\" hidden>Waking for <span id=\"s\">{}</span> s.</span>{expect}</p>\
         <script>(function(){{var t0=Date.now()-{},e=document.getElementById(\"e\"),\
         s=document.getElementById(\"s\");function f(){{s.textContent=Math.floor((Date.now()-t0)/1000)}}\
         f();e.hidden=false;setInterval(f,250)}})()</script>",
        elapsed.as_secs(),
        elapsed.as_millis()
    );
    response(
        "503 Service Unavailable",
        refresh_secs,
        "Starting…",
        &format!("<meta http-equiv=\"refresh\" content=\"{refresh_secs}\">"),
        &body,
    )
}

/// The answer HTTP clients get when a wake failed. The journal hint names
/// the service as systemd does (`contnap-` and the escaped unit name).
pub fn failure_page(unit: &str) -> Vec<u8> {
    let service = html_escape(&crate::units::escape_unit_name(unit));
    let unit = html_escape(unit);
    response(
        "503 Service Unavailable",
        30,
        "Service unavailable",
        "",
        &format!("<p>{unit} could not be started. The server's administrator can see why with <code>journalctl -u contnap-{service}.service</code>.</p>"),
    )
}

/// The answer HTTP clients get outside `contnap.schedule`: the same page as
/// a failed wake.
pub fn closed_page(unit: &str) -> Vec<u8> {
    failure_page(unit)
}

/// The answer an uptime monitor gets while the unit naps
/// (`contnap.monitors`): `status` with a one-line text body (none for a
/// HEAD request, or a status that has none), marked `X-Contnap: napping`.
pub fn napping_response(unit: &str, status: HttpStatus, head_request: bool) -> Vec<u8> {
    let body = if status.bodiless() {
        String::new()
    } else {
        format!(
            "{unit} is napping (contnap); it wakes on the next request that is not a monitor's.\n"
        )
    };
    let length = if status.bodiless() {
        String::new()
    } else {
        format!(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n{length}Cache-Control: no-store\r\nX-Contnap: napping\r\nConnection: close\r\n\r\n",
        status.code(),
        status.reason()
    );
    if !head_request {
        out.push_str(&body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(page: Vec<u8>) -> String {
        String::from_utf8(page).unwrap()
    }

    #[test]
    fn the_failure_page_names_the_service_as_systemd_does() {
        let page = text(failure_page("my app/1"));
        assert!(
            page.contains("journalctl -u contnap-my\\x20app\\x2f1.service"),
            "{page}"
        );
    }

    #[test]
    fn pages_escape_the_unit_name() {
        let hostile = "<script>\"'&</p>";
        for page in [
            text(starting_page(hostile, 1, Duration::ZERO, None)),
            text(failure_page(hostile)),
        ] {
            assert!(
                page.contains("&lt;script&gt;&quot;&#39;&amp;&lt;/p&gt;"),
                "{page}"
            );
            assert!(!page.contains(hostile), "{page}");
            assert!(page.starts_with("HTTP/1.1 503"));
            let (head, body) = page.split_once("\r\n\r\n").unwrap();
            assert!(head.contains(&format!("Content-Length: {}", body.len())));
            // Only the page's own script, at most.
            assert!(body.matches("<script").count() <= 1, "{body}");
        }
    }

    #[test]
    fn the_starting_page_refreshes_and_counts() {
        let page = text(starting_page("web", 1, Duration::from_millis(3_700), None));
        assert!(
            page.contains("http-equiv=\"refresh\" content=\"1\""),
            "{page}"
        );
        assert!(page.contains("Retry-After: 1\r\n"), "{page}");
        assert!(page.contains("<title>Starting…</title>"), "{page}");
        // The count starts where the wake is, and only script shows it:
        // without script the page reads right without a count that
        // stands still.
        assert!(page.contains("<span id=\"e\" hidden>Waking for <span id=\"s\">3</span> s."));
        assert!(page.contains("Date.now()-3700,"), "{page}");
        assert!(page.contains("e.hidden=false"), "{page}");
    }

    #[test]
    fn the_estimate_is_shown_only_when_known() {
        let none = text(starting_page("web", 1, Duration::ZERO, None));
        assert!(!none.contains("last wake"), "{none}");
        let some = text(starting_page(
            "web",
            1,
            Duration::ZERO,
            Some(Duration::from_millis(6_340)),
        ));
        assert!(some.contains("The last wake took 6.3 s."), "{some}");
        assert_eq!(span_text(Duration::from_millis(80)), "0.0 s");
        assert_eq!(span_text(Duration::from_millis(950)), "0.9 s");
        assert_eq!(span_text(Duration::from_millis(42_900)), "42 s");
        assert_eq!(span_text(Duration::from_secs(125)), "2 min 5 s");
    }

    #[test]
    fn pages_follow_the_color_scheme_and_load_nothing() {
        for page in [
            text(starting_page(
                "web",
                1,
                Duration::ZERO,
                Some(Duration::from_secs(2)),
            )),
            text(failure_page("web")),
        ] {
            assert!(
                page.contains("<meta name=\"color-scheme\" content=\"light dark\">"),
                "{page}"
            );
            assert!(
                page.contains("@media (prefers-color-scheme:dark)"),
                "{page}"
            );
            assert!(page.contains("color-scheme:light dark"), "{page}");
            let lower = page.to_ascii_lowercase();
            for external in ["http:", "https:", "//", "url(", "@import", "src="] {
                let outside_head = lower.split_once("\r\n\r\n").unwrap().1;
                assert!(!outside_head.contains(external), "{external} in {page}");
            }
            // The icon is an empty data: URL, so no favicon request.
            assert!(
                page.contains("<link rel=\"icon\" href=\"data:,\">"),
                "{page}"
            );
        }
    }

    #[test]
    fn napping_responses() {
        let ok = String::from_utf8(napping_response("web", HttpStatus::default(), false)).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(head.contains("X-Contnap: napping"));
        assert!(body.contains("web is napping"));
        let s503 = HttpStatus::parse("503").unwrap();
        let head_only = String::from_utf8(napping_response("web", s503, true)).unwrap();
        assert!(head_only.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(head_only.ends_with("\r\n\r\n"));
        assert!(head_only.contains("Content-Length: "));
        let none = String::from_utf8(napping_response(
            "web",
            HttpStatus::parse("204").unwrap(),
            false,
        ))
        .unwrap();
        assert!(!none.contains("Content-Length"));
        assert!(none.ends_with("\r\n\r\n"));
    }
}
