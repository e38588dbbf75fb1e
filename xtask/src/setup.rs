//! `cargo xtask setup`: install what the workspace needs, and nothing when it is all there.

use std::io::IsTerminal;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Result};

use crate::{announce, capture, interop, is_root, on_path, postgres};

#[derive(clap::Args, Default)]
pub struct SetupOpts {
    /// Also install the Tauri/WebKit packages (automatic when authenticator-app/ has a Tauri app)
    #[arg(long)]
    pub gui: bool,
    /// Also install Chromium and ChromeDriver (automatic when tests/browser/ exists)
    #[arg(long)]
    pub browser: bool,
}

/// When a group of packages is installed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Need {
    Always,
    /// Only when `psql` or `pg_isready` is not on PATH.
    PostgresClient,
    /// Only when no PostgreSQL answers and no server binaries are installed.
    PostgresServer,
    /// With `--gui` or when the workspace has the Tauri app.
    Gui,
    /// With `--browser` or when the workspace has browser tests.
    Browser,
    /// When the workspace has the interop suite (`interop/`: Chromium driven by playwright-core).
    Interop,
    /// When the workspace has the interop suite and `npm` is not on PATH.
    Node,
}

struct Group {
    needed_for: Need,
    packages: &'static [&'static str],
}

/// Every Debian package the workspace needs, in one place.
const PACKAGES: &[Group] = &[
    // Building: openssl-sys (under josekit) finds OpenSSL's headers through pkg-config.
    Group {
        needed_for: Need::Always,
        packages: &["pkg-config", "libssl-dev"],
    },
    // The demo runs the server, authenticator and POS terminal side by side in tmux;
    // terminal tests drive the ratatui app with send-keys / capture-pane.
    Group {
        needed_for: Need::Always,
        packages: &["tmux"],
    },
    // The authenticator keeps its sealed keys in the OS keyring: its tests run GNOME Keyring
    // on a private session bus (dbus-run-session) and look the entry up with secret-tool.
    Group {
        needed_for: Need::Always,
        packages: &["dbus-daemon", "gnome-keyring", "libsecret-tools"],
    },
    // `test` fuzzes the live server's OpenAPI with schemathesis, installed from PyPI into a venv.
    Group {
        needed_for: Need::Always,
        packages: &["python3-venv"],
    },
    // psql and pg_isready, when not already there (the server package brings them): `test`
    // checks PostgreSQL with them and drops leftover per-test databases.
    Group {
        needed_for: Need::PostgresClient,
        packages: &["postgresql-client"],
    },
    // A PostgreSQL server (initdb, pg_ctl) for the throwaway server `test` starts when none answers.
    Group {
        needed_for: Need::PostgresServer,
        packages: &["postgresql"],
    },
    // The Tauri desktop app: WebKitGTK, GTK, tray icon and SVG icons to build it; Xvfb, a
    // D-Bus session and WebKitWebDriver to run and drive it headless.
    Group {
        needed_for: Need::Gui,
        packages: &[
            "libwebkit2gtk-4.1-dev",
            "libgtk-3-dev",
            "libayatana-appindicator3-dev",
            "librsvg2-dev",
            "xvfb",
            "webkit2gtk-driver",
            "dbus-x11",
            // dbus-run-session (the GUI test's private session bus) and a font for readable screenshots.
            "dbus-daemon",
            // dbus-monitor: the GUI test watches the desktop notification and the tray label on the bus.
            "dbus-bin",
            // xdotool: the GUI test hides the window, to see a request arrive in the background.
            "xdotool",
            // gdbus: the GUI test reads the tray icon's label and menu (dbusmenu) from the bus.
            "libglib2.0-bin",
            "fonts-dejavu-core",
        ],
    },
    // Browser tests: Debian's Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver).
    Group {
        needed_for: Need::Browser,
        packages: &["chromium", "chromium-driver"],
    },
    // The interop suite drives /usr/bin/chromium with playwright-core (no browser download).
    Group {
        needed_for: Need::Interop,
        packages: &["chromium"],
    },
    // Node.js and npm for the interop suite (openid-client, playwright-core, `node --test`).
    Group {
        needed_for: Need::Node,
        packages: &["nodejs", "npm"],
    },
];

const RUST_COMPONENTS: &[&str] = &["rustfmt", "clippy"];

/// Install missing packages and components. `check_postgres`: whether a PostgreSQL server
/// may be needed (false for `test --sqlite-only`).
pub fn run(root: &Path, opts: &SetupOpts, check_postgres: bool) -> Result<()> {
    let needs = wanted_needs(root, opts, check_postgres)?;
    let mut wanted: Vec<&str> = PACKAGES
        .iter()
        .filter(|group| needs.contains(&group.needed_for))
        .flat_map(|group| group.packages.iter().copied())
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let missing = missing_packages(&wanted)?;
    if missing.is_empty() {
        eprintln!("==> Debian packages: all {} present", wanted.len());
    } else {
        apt_install(&missing)?;
    }
    rust_components()?;
    if needs.contains(&Need::Interop) {
        interop::install(root)?;
    }
    Ok(())
}

/// Which package groups this machine and workspace need.
fn wanted_needs(root: &Path, opts: &SetupOpts, check_postgres: bool) -> Result<Vec<Need>> {
    let mut needs = vec![Need::Always];
    if opts.gui || has_tauri_app(root) {
        eprintln!("==> including the GUI (Tauri/WebKit) packages");
        needs.push(Need::Gui);
    }
    if opts.browser || root.join("tests/browser").is_dir() {
        eprintln!("==> including the browser (Chromium) packages");
        needs.push(Need::Browser);
    }
    if interop::dir(root).join("package.json").is_file() {
        needs.push(Need::Interop);
        if !on_path("npm") {
            eprintln!("==> npm not found: including `nodejs` and `npm` for interop/");
            needs.push(Need::Node);
        }
    }
    if check_postgres && !(on_path("psql") && on_path("pg_isready")) {
        eprintln!("==> psql or pg_isready not found: including `postgresql-client`");
        needs.push(Need::PostgresClient);
    }
    if check_postgres && postgres::server_bin_dir().is_none() {
        let url = postgres::configured_url();
        if !postgres::is_reachable(&url)? {
            eprintln!("==> no PostgreSQL answers at {url} and none is installed: including `postgresql`");
            needs.push(Need::PostgresServer);
        }
    }
    Ok(needs)
}

fn has_tauri_app(root: &Path) -> bool {
    root.join("authenticator-app/src-tauri").exists() || root.join("authenticator-app/tauri.conf.json").exists()
}

/// The packages of `wanted` that dpkg does not report as installed.
fn missing_packages<'a>(wanted: &[&'a str]) -> Result<Vec<&'a str>> {
    if !on_path("dpkg-query") {
        bail!(
            "dpkg-query not found: setup supports Debian only; install these packages by hand: {}",
            wanted.join(" ")
        );
    }
    let mut cmd = Command::new("dpkg-query");
    cmd.args(["-W", "-f=${Package} ${Status}\\n"]).args(wanted);
    announce(&cmd);
    // dpkg-query exits 1 when some package is unknown; the listing is still valid.
    let output = cmd.output()?;
    let listing = String::from_utf8_lossy(&output.stdout);
    let installed: Vec<&str> = listing
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let package = words.next()?;
            // ${Status} is "want flag status", e.g. "install ok installed".
            (words.nth(2)? == "installed").then_some(package)
        })
        .collect();
    Ok(wanted.iter().copied().filter(|pkg| !installed.contains(pkg)).collect())
}

/// `apt-get update` once, then install `missing`, as root or through sudo.
fn apt_install(missing: &[&str]) -> Result<()> {
    eprintln!("==> missing Debian packages: {}", missing.join(" "));
    let sudo = if is_root()? {
        None
    } else if on_path("sudo") {
        // Without a terminal sudo cannot ask for a password: fail at once rather than hang.
        Some(!std::io::stdin().is_terminal())
    } else {
        bail!(
            "not root and sudo is not available: as root, run `apt-get install -y --no-install-recommends {}`",
            missing.join(" ")
        );
    };
    crate::run(&mut apt_get(sudo, &["update"]))?;
    let mut install = apt_get(sudo, &["install", "-y", "--no-install-recommends"]);
    install.args(missing);
    crate::run(&mut install)
}

/// `apt-get ARGS` non-interactively; `sudo`: None as root, Some(non_interactive) through sudo.
fn apt_get(sudo: Option<bool>, args: &[&str]) -> Command {
    let mut cmd = match sudo {
        None => {
            let mut cmd = Command::new("apt-get");
            cmd.env("DEBIAN_FRONTEND", "noninteractive");
            cmd
        }
        Some(non_interactive) => {
            let mut cmd = Command::new("sudo");
            if non_interactive {
                cmd.arg("-n");
            }
            cmd.args(["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            cmd
        }
    };
    cmd.args(args);
    cmd
}

/// rustfmt and clippy, through rustup.
fn rust_components() -> Result<()> {
    if !on_path("rustup") {
        eprintln!("==> rustup not found: not checking for {}", RUST_COMPONENTS.join(", "));
        return Ok(());
    }
    let installed = capture(Command::new("rustup").args(["component", "list", "--installed"]))?;
    // Lines look like "rustfmt-x86_64-unknown-linux-gnu".
    let missing: Vec<&str> = RUST_COMPONENTS
        .iter()
        .copied()
        .filter(|component| {
            !installed.lines().any(|line| {
                line.trim()
                    .strip_prefix(component)
                    .is_some_and(|rest| rest.starts_with('-'))
            })
        })
        .collect();
    if missing.is_empty() {
        eprintln!("==> rust components: {} present", RUST_COMPONENTS.join(", "));
        return Ok(());
    }
    crate::run(Command::new("rustup").args(["component", "add"]).args(&missing))
}
