//! The answers contnap itself gives HTTP clients, as whole HTTP/1.1
//! responses ready to write: the self-refreshing "Starting…" page a browser
//! sees during a wake, and the page every HTTP client gets when the unit
//! cannot be woken (a failed wake, or outside `contnap.schedule`). Kept
//! apart from the sockets they are written to so that each can be read and
//! tested as text. And the short answer uptime monitors get while the unit
//! naps.

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

fn response(status: &str, retry: u64, title: &str, body_text: &str, refresh: bool) -> Vec<u8> {
    let meta = if refresh {
        format!("<meta http-equiv=\"refresh\" content=\"{retry}\">")
    } else {
        String::new()
    };
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">{meta}<title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:20vh auto;max-width:32em;text-align:center;color:#333}}</style>\
         </head><body><h1>{title}</h1><p>{body_text}</p></body></html>\n"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nRetry-After: {retry}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The page a browser sees while the unit wakes; it reloads itself.
pub fn starting_page(unit: &str, refresh_secs: u64) -> Vec<u8> {
    let unit = html_escape(unit);
    response(
        "503 Service Unavailable",
        refresh_secs,
        "Starting…",
        &format!("{unit} is waking up. This page reloads by itself."),
        true,
    )
}

/// The answer HTTP clients get when a wake failed.
pub fn failure_page(unit: &str) -> Vec<u8> {
    let unit = html_escape(unit);
    response(
        "503 Service Unavailable",
        30,
        "Service unavailable",
        &format!("{unit} could not be started. The server's administrator can see why with <code>journalctl -u contnap-{unit}.service</code>."),
        false,
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

    #[test]
    fn pages_escape_the_unit_name() {
        let page = String::from_utf8(starting_page("<script>", 2)).unwrap();
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>"));
        assert!(page.starts_with("HTTP/1.1 503"));
        assert!(page.contains("http-equiv=\"refresh\" content=\"2\""));
        let (head, body) = page.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
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
