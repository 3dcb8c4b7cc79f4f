//! A real browser for the pages' tests: Debian's headless Chromium, driven
//! through its chromedriver (both installed by scripts/browser-deps.sh, which
//! scripts/test.sh runs). Each `Browser` has its own driver process and empty
//! profile; at most two run at once, on this machine's two cores.
//!
//! Without Chromium these tests fail, saying how to install it: they are
//! never skipped in silence.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::helpers::TestBackend;

static BROWSERS: std::sync::LazyLock<std::sync::Arc<Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(Semaphore::new(2)));

fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file()).unwrap_or_else(|| {
        panic!(
            "{name} is not installed: run scripts/browser-deps.sh (it installs Debian's chromium and chromium-driver)"
        )
    })
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// axe-core, pinned in tests/browser/package-lock.json.
fn axe_source() -> String {
    let path = repository_root().join("tests/browser/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/browser-deps.sh (npm ci in tests/browser)", path.display()))
}

/// Where screenshots go: `target/browser-screenshots/<backend>/`.
fn screenshot_dir(backend: TestBackend) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repository_root().join("target"), PathBuf::from);
    let dir = target.join("browser-screenshots").join(format!("{backend:?}").to_lowercase());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    _permit: OwnedSemaphorePermit,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Light,
    Dark,
}

impl Browser {
    pub async fn start() -> Self {
        Self::start_with(Scheme::Light).await
    }

    pub async fn start_with(scheme: Scheme) -> Self {
        let permit = BROWSERS.clone().acquire_owned().await.unwrap();
        let chromium = find_program("chromium");
        let chromedriver = find_program("chromedriver");
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless=new".to_owned(),
            // Tests run as root in CI, where Chromium's sandbox cannot start.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            // This machine has no network: no calls home, no component updates.
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if scheme == Scheme::Dark {
            // Makes `prefers-color-scheme: dark` match in pages.
            args.push("--force-dark-mode".to_owned());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), json!({ "binary": chromium.to_string_lossy(), "args": args }));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::rustls().unwrap().capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(e) => {
                    assert!(std::time::Instant::now() < deadline, "chromedriver did not start a session: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        Self { client, _driver: driver, _profile: profile, _permit: permit }
    }

    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The address bar's path.
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Types into whatever has the focus, as a keyboard would.
    pub async fn type_keys(&self, keys: &str) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(keys).await.unwrap();
    }

    pub async fn focus(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
    }

    /// Clicks, then waits for the next page (a new document, not the one
    /// clicked on, which may show `expect` too) to show `expect`.
    pub async fn click(&self, css: &str, expect: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        self.client.execute("document.documentElement.setAttribute('data-left', '')", vec![]).await.unwrap();
        element.click().await.unwrap();
        self.wait_for(&format!("html:not([data-left]) {expect}")).await;
    }

    pub async fn wait_for(&self, css: &str) {
        tokio::time::timeout(Duration::from_secs(20), self.client.wait().for_element(Locator::Css(css)))
            .await
            .unwrap_or_else(|_| panic!("{css} did not appear"))
            .unwrap();
    }

    pub async fn value(&self, css: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.prop("value").await.unwrap().unwrap_or_default()
    }

    pub async fn has(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.unwrap().is_empty()
    }

    pub async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.attr(name).await.unwrap()
    }

    pub async fn text(&self, css: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.text().await.unwrap()
    }

    /// The browser's cookies for the current site, as a `Cookie` header.
    pub async fn cookie_header(&self) -> String {
        let cookies = self.client.get_all_cookies().await.unwrap();
        cookies.iter().map(|c| format!("{}={}", c.name(), c.value())).collect::<Vec<_>>().join("; ")
    }

    /// Whether the document matches `prefers-color-scheme: dark`.
    pub async fn prefers_dark(&self) -> bool {
        let answer =
            self.client.execute("return matchMedia('(prefers-color-scheme: dark)').matches", vec![]).await.unwrap();
        answer.as_bool().unwrap_or(false)
    }

    /// axe-core's serious and critical violations on the current page, or a panic naming them.
    pub async fn assert_accessible(&self, page: &str) {
        self.client.execute(&axe_source(), vec![]).await.unwrap();
        let script = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then(r => done(r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map(n => n.target.join(' ')).join(', ')}`)))
              .catch(e => done(['axe failed: ' + e]));
        "#;
        let found: Value = self.client.execute_async(script, vec![]).await.unwrap();
        let found: Vec<String> = serde_json::from_value(found).unwrap();
        assert!(found.is_empty(), "axe-core on {page}:\n{}", found.join("\n"));
    }

    /// Whole-page screenshots at 1280 and 375 px wide, into the test output.
    pub async fn screenshots(&self, backend: TestBackend, page: &str) {
        let dir = screenshot_dir(backend);
        for width in [1280u32, 375] {
            self.client.set_window_size(width, 900).await.unwrap();
            let height = self
                .client
                .execute("return Math.ceil(document.documentElement.scrollHeight)", vec![])
                .await
                .unwrap()
                .as_u64()
                .unwrap_or(900);
            // The window's frame takes some of its height; grow until the page fits.
            let height = u32::try_from(height).unwrap_or(900).clamp(400, 4000) + 100;
            self.client.set_window_size(width, height).await.unwrap();
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{page}-{width}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
    }

    /// Screenshots and axe-core, for a page a person sees.
    pub async fn check_page(&self, backend: TestBackend, page: &str) {
        self.assert_accessible(page).await;
        self.screenshots(backend, page).await;
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
