//! A real headless Chromium (Debian's `chromium`) driven over the DevTools protocol: pages are
//! loaded, console messages, uncaught exceptions, failed loads and requests are recorded, and
//! full-page screenshots are written under the tests' output folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::log::{EnableParams as LogEnable, EventEntryAdded};
use chromiumoxide::cdp::browser_protocol::network::EventRequestWillBeSent;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{EventConsoleApiCalled, EventExceptionThrown};
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where the browser tests write their screenshots: `target/tmp/dashboards/`.
pub fn output_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboards");
    std::fs::create_dir_all(&d).expect("output dir");
    d
}

pub struct Chromium {
    pub browser: Browser,
    _profile: tempfile::TempDir,
    handler: tokio::task::JoinHandle<()>,
}

/// A page with everything it reported.
pub struct Tab {
    pub page: Page,
    /// Console errors, uncaught exceptions and error log entries (failed loads, CSP, ...).
    pub errors: Arc<Mutex<Vec<String>>>,
    /// Every URL the page requested.
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl Chromium {
    pub async fn start() -> Chromium {
        assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: run scripts/install-test-deps.sh");
        let profile = tempfile::tempdir().expect("profile dir");
        let config = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .disable_default_args()
            .no_sandbox()
            .args([
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--disable-dev-shm-usage",
            ])
            .user_data_dir(profile.path())
            .window_size(1400, 1000)
            .viewport(Viewport { width: 1400, height: 1000, ..Default::default() })
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(60))
            .build()
            .expect("browser config");
        let (browser, mut events) = Browser::launch(config).await.expect("launch chromium");
        // Events of protocol versions newer than the crate's come as errors: keep reading.
        let handler = tokio::spawn(async move { while events.next().await.is_some() {} });
        Chromium { browser, _profile: profile, handler }
    }

    /// A blank tab that records errors and requests; navigate it with [`Tab::open`].
    pub async fn tab(&self) -> Tab {
        let page = self.browser.new_page("about:blank").await.expect("new page");
        page.execute(LogEnable::default()).await.expect("Log.enable");
        let errors = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mut console = page.event_listener::<EventConsoleApiCalled>().await.expect("console events");
        let mut thrown = page.event_listener::<EventExceptionThrown>().await.expect("exception events");
        let mut log = page.event_listener::<EventEntryAdded>().await.expect("log events");
        let mut sent = page.event_listener::<EventRequestWillBeSent>().await.expect("request events");
        let e = errors.clone();
        tokio::spawn(async move {
            while let Some(ev) = console.next().await {
                let kind = format!("{:?}", ev.r#type).to_lowercase();
                if kind.contains("error") || kind.contains("assert") {
                    e.lock().unwrap().push(format!("console.{kind}: {:?}", ev.args.iter().map(|a| a.value.clone()).collect::<Vec<_>>()));
                }
            }
        });
        let e = errors.clone();
        tokio::spawn(async move {
            while let Some(ev) = thrown.next().await {
                e.lock().unwrap().push(format!("exception: {:?}", ev.exception_details.text));
            }
        });
        let e = errors.clone();
        tokio::spawn(async move {
            while let Some(ev) = log.next().await {
                if format!("{:?}", ev.entry.level).to_lowercase().contains("error") {
                    e.lock().unwrap().push(format!("log: {} {:?}", ev.entry.text, ev.entry.url));
                }
            }
        });
        let r = requests.clone();
        tokio::spawn(async move {
            while let Some(ev) = sent.next().await {
                r.lock().unwrap().push(ev.request.url.clone());
            }
        });
        Tab { page, errors, requests }
    }

    pub async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

impl Tab {
    pub async fn open(&self, url: &str) {
        self.page.goto(url).await.unwrap_or_else(|e| panic!("loading {url}: {e}"));
        self.page.wait_for_navigation().await.expect("navigation");
    }

    /// A JavaScript expression's value.
    pub async fn eval<T: serde::de::DeserializeOwned>(&self, js: &str) -> T {
        self.page.evaluate(js).await.unwrap_or_else(|e| panic!("{js}: {e}")).into_value().unwrap_or_else(|e| panic!("{js}: {e}"))
    }

    pub async fn text(&self, selector: &str) -> String {
        self.eval(&format!("(document.querySelector({selector:?}) || {{}}).innerText || ''")).await
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let path = output_dir().join(name);
        let params = ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).full_page(true).build();
        self.page.save_screenshot(params, &path).await.unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
        path
    }

    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
}
