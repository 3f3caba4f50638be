//! keepalived's e-mail alerts, for the programs that take keepalived's configuration as their
//! own (`vrrpd`, `lvsd`).
//!
//! [`Mailer::new`] takes the `global_defs` mail settings
//! ([`keepalived_conf::SmtpSettings`]) and fills in keepalived 2.2.7's defaults: `router_id`,
//! the HELO name and the sender come from the host name (`From` is the user name, `@` and the
//! host name). [`Mailer::vrrp_instance`], [`Mailer::vrrp_group`] and [`Mailer::real_server`]
//! make the alerts keepalived sends, with its subjects and bodies
//! (`[router_id] VRRP Instance VI_1 - Entering MASTER state`,
//! `[router_id] Realserver [10.0.0.2]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN`);
//! [`Mailer::message`] writes the message as keepalived's `smtp.c` does (headers `Date`,
//! `From`, `Subject`, `X-Mailer: Keepalived`, `To`), and [`Mailer::send`] sends it over one
//! SMTP connection, given up after `smtp_connect_timeout`.
//!
//! Sending is for the caller to spawn: an alert must never hold up a state change.
//!
//! ```
//! use keepalived_conf::parse_vrrp_str;
//! use ka_alert::{Mailer, VrrpState};
//!
//! let text = "global_defs {\n router_id lb1\n notification_email { ops@example.com }\n \
//!             notification_email_from lb1@example.com\n smtp_server 192.0.2.25\n}\n";
//! let (conf, _) = parse_vrrp_str(text, "keepalived.conf").unwrap();
//! let mailer = Mailer::new(&conf.global).unwrap();
//! let alert = mailer.vrrp_instance("VI_1", VrrpState::Master);
//! assert_eq!(alert.subject, "[lb1] VRRP Instance VI_1 - Entering MASTER state");
//! let text = mailer.message(&alert, std::time::UNIX_EPOCH);
//! assert!(text.starts_with("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\nFrom: lb1@example.com\r\n"));
//! ```

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use keepalived_conf::GlobalDefs;
use keepalived_conf::lvs::{Protocol, VsAddr};
use lettre::address::{Address, AddressError, Envelope};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// Why an alert was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// `notification_email_from` or a recipient is not an e-mail address.
    #[error("`{addr}` is not an e-mail address: {source}")]
    Address {
        /// The address as configured.
        addr: String,
        /// What is wrong with it.
        #[source]
        source: AddressError,
    },
    /// The sender and recipients do not make an SMTP envelope.
    #[error("envelope: {0}")]
    Envelope(#[source] lettre::error::Error),
    /// The SMTP server refused the mail, or could not be reached.
    #[error("SMTP server {server}: {source}")]
    Smtp {
        /// `host:port`.
        server: String,
        /// The client's error.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The exchange did not end within `smtp_connect_timeout`.
    #[error("SMTP server {server}: no answer within {timeout:?}")]
    Timeout {
        /// `host:port`.
        server: String,
        /// `smtp_connect_timeout`.
        timeout: Duration,
    },
}

/// The VRRP states keepalived mails about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpState {
    /// `Entering MASTER state`.
    Master,
    /// `Entering BACKUP state`.
    Backup,
    /// `Entering FAULT state`.
    Fault,
    /// `Stopping`.
    Stopping,
}

/// The check that saw a real server go up or down: keepalived's bodies differ by checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// `TCP_CHECK`.
    Tcp,
    /// `HTTP_GET`.
    Http,
}

/// One alert: a subject and a body, as keepalived words them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// The `Subject` header.
    pub subject: String,
    /// The text of the mail (one line).
    pub body: String,
}

/// Where and how alerts go: `global_defs` with keepalived's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailer {
    /// `smtp_server` host (an address or a name).
    pub host: String,
    /// `smtp_server` port.
    pub port: u16,
    /// `notification_email`, in order.
    pub to: Vec<String>,
    /// `notification_email_from`, else the user name, `@` and the host name.
    pub from: String,
    /// `smtp_helo_name`, else the host name.
    pub helo: String,
    /// `router_id`, else the host name: the `[...]` that starts every subject.
    pub router_id: String,
    /// `smtp_connect_timeout`: the bound of one whole exchange.
    pub timeout: Duration,
}

/// This machine's host name, as keepalived's `local_name` (`unknown` if it cannot be read).
#[must_use]
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The name of the user this process runs as (`root` if it cannot be read).
#[must_use]
pub fn user_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".to_string(), |u| u.name)
}

impl Mailer {
    /// The mailer of `global`, with this machine's host and user names for the defaults;
    /// `None` when keepalived would send nothing (no `smtp_server` or no
    /// `notification_email`).
    #[must_use]
    pub fn new(global: &GlobalDefs) -> Option<Self> {
        Self::with_names(global, &host_name(), &user_name())
    }

    /// [`Mailer::new`] with the host and user names given.
    #[must_use]
    pub fn with_names(global: &GlobalDefs, host: &str, user: &str) -> Option<Self> {
        let smtp = &global.smtp;
        let server = smtp.server.as_ref()?;
        if smtp.to.is_empty() {
            return None;
        }
        Some(Self {
            host: server.host.clone(),
            port: server.port,
            to: smtp.to.clone(),
            from: smtp
                .from
                .clone()
                .unwrap_or_else(|| format!("{user}@{host}")),
            helo: smtp.helo_name.clone().unwrap_or_else(|| host.to_string()),
            router_id: global.router_id.clone().unwrap_or_else(|| host.to_string()),
            timeout: smtp.connect_timeout,
        })
    }

    /// `host:port` of the SMTP server, for messages.
    #[must_use]
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A VRRP instance's state change (keepalived's `vrrp_smtp_notifier`).
    #[must_use]
    pub fn vrrp_instance(&self, name: &str, state: VrrpState) -> Alert {
        let (what, body) = match state {
            VrrpState::Master => (
                "Entering MASTER state",
                "=> VRRP Instance is now owning VRRP VIPs <=",
            ),
            VrrpState::Backup => (
                "Entering BACKUP state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            VrrpState::Fault => (
                "Entering FAULT state",
                "=> VRRP Instance is no longer owning VRRP VIPs <=",
            ),
            VrrpState::Stopping => ("Stopping", "=> VRRP Instance stopping <="),
        };
        Alert {
            subject: format!("[{}] VRRP Instance {name} - {what}", self.router_id),
            body: body.to_string(),
        }
    }

    /// A sync group's state change (keepalived's `vrrp_sync_smtp_notifier`).
    #[must_use]
    pub fn vrrp_group(&self, name: &str, state: VrrpState) -> Alert {
        let (what, body) = match state {
            VrrpState::Master => (
                "Entering MASTER state",
                "=> All VRRP group instances are now in MASTER state <=",
            ),
            VrrpState::Backup => (
                "Entering BACKUP state",
                "=> All VRRP group instances are now in BACKUP state <=",
            ),
            VrrpState::Fault => (
                "Entering FAULT state",
                "=> All VRRP group instances are now in FAULT state <=",
            ),
            VrrpState::Stopping => (
                "Stopping",
                "=> All VRRP group instances are now stopping <=",
            ),
        };
        Alert {
            subject: format!("[{}] VRRP Group {name} - {what}", self.router_id),
            body: body.to_string(),
        }
    }

    /// A real server going up or down, as the checker `check` saw it (keepalived's
    /// `SMTP_MSG_RS` alerts of `check_tcp.c` and `check_http.c`).
    #[must_use]
    pub fn real_server(
        &self,
        vs: VsAddr,
        protocol: Protocol,
        rs: SocketAddr,
        up: bool,
        check: CheckKind,
    ) -> Alert {
        let vs_text = match vs {
            VsAddr::Socket(a) => trio(a, protocol),
            VsAddr::Fwmark(m) => format!("FWM {m}"),
        };
        let body = match (check, up) {
            (CheckKind::Tcp, true) => "=> TCP CHECK succeed on service <=",
            (CheckKind::Tcp, false) => "=> TCP CHECK failed on service <=",
            (CheckKind::Http, true) => "=> CHECK succeed on service <=",
            (CheckKind::Http, false) => "=> CHECK failed on service : HTTP request failed <=",
        };
        Alert {
            subject: format!(
                "[{}] Realserver {} of virtual server {vs_text} - {}",
                self.router_id,
                trio(rs, protocol),
                if up { "UP" } else { "DOWN" }
            ),
            body: body.to_string(),
        }
    }

    /// The message as keepalived writes it after `DATA`, without the final `.` line:
    /// `Date`, `From`, `Subject`, `X-Mailer: Keepalived`, `To` (the recipients joined by
    /// `", "`), an empty line, the body and CRLF. The date is `date` in UTC, in RFC 5322 form.
    #[must_use]
    pub fn message(&self, alert: &Alert, date: SystemTime) -> String {
        format!(
            "Date: {}\r\nFrom: {}\r\nSubject: {}\r\nX-Mailer: Keepalived\r\nTo: {}\r\n\r\n{}\r\n",
            rfc5322_date(date),
            self.from,
            one_line(&alert.subject),
            self.to.join(", "),
            alert.body
        )
    }

    /// Sends `alert` over one new SMTP connection (EHLO with the HELO name, MAIL FROM, one
    /// RCPT TO per recipient, DATA, QUIT), the whole exchange bounded by the timeout.
    ///
    /// # Errors
    /// An address that is not one, a server that refuses, cannot be reached, or does not
    /// finish within the timeout.
    pub async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        let addr = |a: &str| {
            a.parse::<Address>().map_err(|source| AlertError::Address {
                addr: a.to_string(),
                source,
            })
        };
        let from = addr(&self.from)?;
        let to = self
            .to
            .iter()
            .map(|a| addr(a))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(from), to).map_err(AlertError::Envelope)?;
        let message = self.message(alert, SystemTime::now());
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.as_str())
            .port(self.port)
            .hello_name(ClientId::Domain(self.helo.clone()))
            .timeout(Some(self.timeout))
            .build();
        // lettre bounds the connect only: the whole exchange is bounded here, so a server
        // that accepts and never answers costs one timeout.
        match tokio::time::timeout(
            self.timeout,
            transport.send_raw(&envelope, message.as_bytes()),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(AlertError::Smtp {
                server: self.server(),
                source,
            }),
            Err(_) => Err(AlertError::Timeout {
                server: self.server(),
                timeout: self.timeout,
            }),
        }
    }
}

/// keepalived's `inet_sockaddrtotrio`: `[ADDR]:PROTO:PORT`.
fn trio(a: SocketAddr, protocol: Protocol) -> String {
    let proto = match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
        _ => "?",
    };
    format!("[{}]:{proto}:{}", a.ip(), a.port())
}

/// A header value on one line: CR and LF (which a configured name could hold) become spaces.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// `Thu, 01 Jan 1970 00:00:00 +0000`: keepalived's `%a, %d %b %Y %H:%M:%S %z`, in UTC.
fn rfc5322_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let mut out = String::new();
    let _ = write!(
        out,
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS.get(usize::try_from(days % 7).unwrap_or(0))
            .unwrap_or(&"Thu"),
        MONTHS
            .get(usize::try_from(month - 1).unwrap_or(0))
            .unwrap_or(&"Jan"),
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    );
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use keepalived_conf::parse_vrrp_str;

    fn mailer(global: &str) -> Option<Mailer> {
        let (c, _) = parse_vrrp_str(&format!("global_defs {{\n{global}\n}}\n"), "t.conf").unwrap();
        Mailer::with_names(&c.global, "lb1.example.com", "root")
    }

    #[test]
    fn defaults_as_keepalived() {
        assert_eq!(mailer(" smtp_server 127.0.0.1"), None);
        assert_eq!(mailer(" notification_email { a@b.c }"), None);
        let m = mailer(" notification_email { a@b.c\n d@e.f }\n smtp_server ::1 2525").unwrap();
        assert_eq!(m.from, "root@lb1.example.com");
        assert_eq!(m.helo, "lb1.example.com");
        assert_eq!(m.router_id, "lb1.example.com");
        assert_eq!(m.timeout, Duration::from_secs(30));
        assert_eq!(m.server(), "[::1]:2525");
        let m = mailer(
            " notification_email { a@b.c }\n notification_email_from ka@x.y\n smtp_server \
             127.0.0.1\n smtp_helo_name h\n router_id r\n smtp_connect_timeout 3",
        )
        .unwrap();
        assert_eq!(
            (m.from.as_str(), m.helo.as_str(), m.router_id.as_str()),
            ("ka@x.y", "h", "r")
        );
        assert_eq!(m.timeout, Duration::from_secs(3));
    }

    #[test]
    fn subjects_bodies_and_message() {
        let m = mailer(
            " router_id lb1\n notification_email { a@b.c\n d@e.f }\n \
             notification_email_from ka@x.y\n smtp_server 127.0.0.1",
        )
        .unwrap();
        let a = m.vrrp_instance("VI_1", VrrpState::Backup);
        assert_eq!(
            a.subject,
            "[lb1] VRRP Instance VI_1 - Entering BACKUP state"
        );
        assert_eq!(a.body, "=> VRRP Instance is no longer owning VRRP VIPs <=");
        let a = m.vrrp_group("G", VrrpState::Fault);
        assert_eq!(a.subject, "[lb1] VRRP Group G - Entering FAULT state");
        let vs = VsAddr::Socket("10.0.0.1:80".parse().unwrap());
        let a = m.real_server(
            vs,
            Protocol::Tcp,
            "10.0.0.2:8080".parse().unwrap(),
            false,
            CheckKind::Tcp,
        );
        assert_eq!(
            a.subject,
            "[lb1] Realserver [10.0.0.2]:tcp:8080 of virtual server [10.0.0.1]:tcp:80 - DOWN"
        );
        assert_eq!(a.body, "=> TCP CHECK failed on service <=");
        let a = m.real_server(
            VsAddr::Fwmark(7),
            Protocol::Udp,
            "[2001:db8::2]:0".parse().unwrap(),
            true,
            CheckKind::Http,
        );
        assert_eq!(
            a.subject,
            "[lb1] Realserver [2001:db8::2]:udp:0 of virtual server FWM 7 - UP"
        );
        assert_eq!(a.body, "=> CHECK succeed on service <=");
        let a = m.vrrp_instance("VI_1", VrrpState::Master);
        let t = UNIX_EPOCH + Duration::from_secs(1_614_591_848);
        assert_eq!(
            m.message(&a, t),
            "Date: Mon, 01 Mar 2021 09:44:08 +0000\r\nFrom: ka@x.y\r\nSubject: [lb1] VRRP \
             Instance VI_1 - Entering MASTER state\r\nX-Mailer: Keepalived\r\nTo: a@b.c, \
             d@e.f\r\n\r\n=> VRRP Instance is now owning VRRP VIPs <=\r\n"
        );
    }

    #[test]
    fn dates() {
        let d = |s: u64| rfc5322_date(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(d(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(d(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(d(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 +0000");
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let m = mailer(&format!(
            " notification_email {{ a@b.c }}\n smtp_server 127.0.0.1 {port}\n smtp_connect_timeout 2"
        ))
        .unwrap();
        let e = m
            .send(&m.vrrp_instance("VI_1", VrrpState::Master))
            .await
            .unwrap_err();
        assert!(matches!(e, AlertError::Smtp { .. }), "{e}");
    }

    #[tokio::test]
    async fn silent_server_times_out() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let (_c, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let m = mailer(&format!(
            " notification_email {{ a@b.c }}\n smtp_server 127.0.0.1 {port}\n smtp_connect_timeout 1"
        ))
        .unwrap();
        let t0 = std::time::Instant::now();
        let e = m
            .send(&m.vrrp_instance("VI_1", VrrpState::Master))
            .await
            .unwrap_err();
        assert!(matches!(e, AlertError::Timeout { .. }), "{e}");
        assert!(
            t0.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t0.elapsed()
        );
        hold.abort();
    }
}
