//! `hypergolix service install | uninstall | status`: the local service
//! under the user's service manager, a systemd user unit on Linux
//! (`~/.config/systemd/user/hypergolix.service`) or a launchd agent on
//! macOS (`~/Library/LaunchAgents/org.hypergolix.service.plist`), running
//! this very binary (its absolute path) on one data directory.
//!
//! `install` writes the file and, where the service manager answers
//! (`systemctl --user`, `launchctl`), enables and starts it; `--no-start`
//! only writes it, `--dry-run` prints it and writes nothing. A first start
//! under the manager must create the account (or log in) without a
//! terminal: `--password-file FILE` hands the password over, through
//! systemd's `LoadCredential` (the service reads it from
//! `$CREDENTIALS_DIRECTORY`), and a file other users can read is refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::settings::{check_private_file, DirArgs};

use crate::error::{Error, Result};

/// The unit's name (systemd) and label (launchd).
pub const NAME: &str = "hypergolix";
/// The launchd label.
pub const LABEL: &str = "org.hypergolix.service";

/// Which service manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Manager {
    /// A systemd user unit (Linux).
    Systemd,
    /// A launchd agent (macOS).
    Launchd,
}

impl Manager {
    /// This platform's.
    pub fn native() -> Self {
        if cfg!(target_os = "macos") {
            Manager::Launchd
        } else {
            Manager::Systemd
        }
    }
}

/// `hypergolix service` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ServiceAction,
}

/// `hypergolix service` actions.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServiceAction {
    /// Write the unit (or agent) and, unless --no-start, enable and start it.
    Install(InstallArgs),
    /// Stop and disable it, and remove the file.
    Uninstall(ManagerArgs),
    /// Whether it is installed, and what the service manager says of it.
    Status(ManagerArgs),
}

/// Which manager, and where its files go.
#[derive(Debug, Clone, clap::Args)]
pub struct ManagerArgs {
    /// The service manager [default: systemd on Linux, launchd on macOS].
    #[arg(long, value_enum)]
    pub manager: Option<Manager>,
    /// Where the unit file goes [default: ~/.config/systemd/user or
    /// ~/Library/LaunchAgents].
    #[arg(long, env = "HYPERGOLIX_UNIT_DIR")]
    pub unit_dir: Option<PathBuf>,
    /// Print what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `hypergolix service install` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct InstallArgs {
    /// Manager, unit directory, dry run.
    #[command(flatten)]
    pub manager: ManagerArgs,
    /// The data directory the service runs on.
    #[command(flatten)]
    pub dir: DirArgs,
    /// The account password for the first start (a new data directory),
    /// from this file: readable by its owner only. systemd hands it to the
    /// service as a credential; launchd passes the path.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Log in to this existing account on the first start (a new device;
    /// needs the remote in the data directory's config).
    #[arg(long, value_name = "USER_ID")]
    pub login: Option<String>,
    /// Write the file only: do not enable or start it.
    #[arg(long)]
    pub no_start: bool,
}

/// What `install` writes: where, and the file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// Its path.
    pub path: PathBuf,
    /// Its contents.
    pub text: String,
}

fn home() -> Result<PathBuf> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h)),
        _ => Err(Error::Unit(
            "no home directory ($HOME): pass --unit-dir".into(),
        )),
    }
}

/// The directory the manager reads user units from.
pub fn unit_dir(args: &ManagerArgs) -> Result<PathBuf> {
    if let Some(d) = &args.unit_dir {
        return Ok(d.clone());
    }
    Ok(match args.manager.unwrap_or_else(Manager::native) {
        Manager::Systemd => std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .map_or_else(|| home().map(|h| h.join(".config")), Ok)?
            .join("systemd/user"),
        Manager::Launchd => home()?.join("Library/LaunchAgents"),
    })
}

/// The unit file's path.
pub fn unit_path(args: &ManagerArgs) -> Result<PathBuf> {
    let m = args.manager.unwrap_or_else(Manager::native);
    Ok(unit_dir(args)?.join(match m {
        Manager::Systemd => format!("{NAME}.service"),
        Manager::Launchd => format!("{LABEL}.plist"),
    }))
}

/// A path as systemd wants it in `ExecStart=` and `LoadCredential=`:
/// absolute, and refused if it holds characters a unit file would
/// misread.
fn unit_safe(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::Unit(format!("{}: not UTF-8", p.display())))?;
    if !p.is_absolute()
        || s.chars()
            .any(|c| c.is_whitespace() || "\"'\\%$;".contains(c))
    {
        return Err(Error::Unit(format!(
            "{s}: a service unit needs an absolute path without spaces, quotes, \\, %, $ or ;"
        )));
    }
    Ok(s.to_string())
}

/// Escapes text for an XML (plist) string.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The unit (or agent) that runs `exe start` on `data_dir`.
pub fn render(
    manager: Manager,
    exe: &Path,
    data_dir: &Path,
    password_file: Option<&Path>,
    login: Option<&str>,
) -> Result<String> {
    let exe_s = unit_safe(exe)?;
    let dir_s = unit_safe(data_dir)?;
    let login_arg = match login {
        Some(u)
            if u.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=".contains(c)) =>
        {
            format!(" --login {u}")
        }
        Some(u) => return Err(Error::Unit(format!("{u:?} is not a user id"))),
        None => String::new(),
    };
    Ok(match manager {
        Manager::Systemd => {
            let (cred, pw) = match password_file {
                Some(p) => (
                    format!("LoadCredential=password:{}\n", unit_safe(p)?),
                    " --password-file %d/password".to_string(),
                ),
                None => (String::new(), String::new()),
            };
            format!(
                "# Written by `hypergolix service install`; `hypergolix service uninstall` removes it.\n\
                 [Unit]\n\
                 Description=Hypergolix local service (end-to-end encrypted sync for apps)\n\
                 # A first start that cannot work (no password, a wrong one)\n\
                 # gives up after three tries instead of retrying for ever.\n\
                 StartLimitIntervalSec=120\n\
                 StartLimitBurst=3\n\
                 \n\
                 [Service]\n\
                 Type=exec\n\
                 ExecStart={exe_s} start --data-dir {dir_s}{pw}{login_arg}\n\
                 {cred}\
                 Restart=on-failure\n\
                 RestartSec=5\n\
                 # SIGTERM: the service stops after its last acknowledged write.\n\
                 KillSignal=SIGTERM\n\
                 TimeoutStopSec=30\n\
                 UMask=0077\n\
                 NoNewPrivileges=yes\n\
                 \n\
                 [Install]\n\
                 WantedBy=default.target\n"
            )
        }
        Manager::Launchd => {
            let mut args = vec![
                exe_s.clone(),
                "start".into(),
                "--data-dir".into(),
                dir_s.clone(),
            ];
            if let Some(p) = password_file {
                args.push("--password-file".into());
                args.push(unit_safe(p)?);
            }
            if let Some(u) = login {
                args.push("--login".into());
                args.push(u.into());
            }
            let argv: String = args
                .iter()
                .map(|a| format!("    <string>{}</string>\n", xml(a)))
                .collect();
            let log = xml(&data_dir.join("service.log").display().to_string());
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                 <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
                 <!-- Written by `hypergolix service install`; `hypergolix service uninstall` removes it. -->\n\
                 <plist version=\"1.0\">\n<dict>\n\
                 \x20 <key>Label</key><string>{LABEL}</string>\n\
                 \x20 <key>ProgramArguments</key>\n  <array>\n{argv}  </array>\n\
                 \x20 <key>RunAtLoad</key><true/>\n\
                 \x20 <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>\n\
                 \x20 <key>StandardOutPath</key><string>{log}</string>\n\
                 \x20 <key>StandardErrorPath</key><string>{log}</string>\n\
                 </dict>\n</plist>\n"
            )
        }
    })
}

/// Runs a service-manager command; None when the manager cannot be
/// reached (no `systemctl`, no user manager running: a container, CI).
fn manager_cmd(program: &str, args: &[&str]) -> Option<std::process::Output> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let unreachable = text.contains("Failed to connect to bus")
        || text.contains("No medium found")
        || text.contains("not been booted with systemd")
        || text.contains("XDG_RUNTIME_DIR");
    (!unreachable).then_some(out)
}

/// Whether to drive the service manager: not for a unit directory of the
/// caller's (`--unit-dir`), which the manager does not read.
fn managed(args: &ManagerArgs) -> bool {
    args.unit_dir.is_none()
}

fn systemctl(args: &[&str]) -> Option<std::process::Output> {
    let mut all = vec!["--user"];
    all.extend_from_slice(args);
    manager_cmd("systemctl", &all)
}

/// `hypergolix service install`.
pub fn install(args: &InstallArgs) -> Result<()> {
    let manager = args.manager.manager.unwrap_or_else(Manager::native);
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Error::Unit(format!("cannot find this program: {e}")))?;
    let data_dir = std::path::absolute(args.dir.dir()?).map_err(|e| Error::Unit(e.to_string()))?;
    let password_file = match &args.password_file {
        Some(p) => {
            let p = std::fs::canonicalize(p)
                .map_err(|e| Error::Unit(format!("{}: {e}", p.display())))?;
            check_private_file(&p)?;
            Some(p)
        }
        None => None,
    };
    let text = render(
        manager,
        &exe,
        &data_dir,
        password_file.as_deref(),
        args.login.as_deref(),
    )?;
    let path = unit_path(&args.manager)?;
    if args.manager.dry_run {
        println!("# {}", path.display());
        print!("{text}");
        return Ok(());
    }
    if !data_dir.join("account.toml").exists() && password_file.is_none() {
        eprintln!(
            "note: {} holds no account yet; its first start needs a password: pass --password-file, or run `hypergolix create-account` (or `login`) first",
            data_dir.display()
        );
    }
    let dir = path
        .parent()
        .ok_or_else(|| Error::Unit("the unit path has no directory".into()))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::Unit(format!("{}: {e}", dir.display())))?;
    super::toml_file::write_text(&path, &text)?;
    println!("wrote {}", path.display());
    if let Some(p) = &password_file {
        println!(
            "the first start reads the password from {}; once the account exists, `hypergolix service install` again without --password-file lets you delete it",
            p.display()
        );
    }
    if args.no_start || !managed(&args.manager) {
        println!("not started; {}", start_hint(manager, &path));
        return Ok(());
    }
    let started = match manager {
        Manager::Systemd => systemctl(&["daemon-reload"])
            .filter(|o| o.status.success())
            .and_then(|_| systemctl(&["enable", "--now", &format!("{NAME}.service")])),
        Manager::Launchd => manager_cmd("launchctl", &["load", "-w", &path.display().to_string()]),
    };
    match started {
        Some(o) if o.status.success() => {
            println!("enabled and started; `hypergolix service status` shows it");
            if manager == Manager::Systemd {
                println!(
                    "to keep it running while you are logged out: loginctl enable-linger {}",
                    std::env::var("USER").unwrap_or_else(|_| "$USER".into())
                );
            }
            Ok(())
        }
        Some(o) => Err(Error::Unit(format!(
            "the service manager refused: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        None => {
            println!(
                "the service manager is not reachable from here; {}",
                start_hint(manager, &path)
            );
            Ok(())
        }
    }
}

fn start_hint(manager: Manager, path: &Path) -> String {
    match manager {
        Manager::Systemd => format!(
            "start it with: systemctl --user daemon-reload && systemctl --user enable --now {NAME}.service"
        ),
        Manager::Launchd => format!("start it with: launchctl load -w {}", path.display()),
    }
}

/// `hypergolix service uninstall`: nothing is left behind.
pub fn uninstall(args: &ManagerArgs) -> Result<()> {
    let manager = args.manager.unwrap_or_else(Manager::native);
    let path = unit_path(args)?;
    if args.dry_run {
        println!(
            "would stop and disable the service, and remove {}",
            path.display()
        );
        return Ok(());
    }
    match manager {
        _ if !managed(args) => {}
        Manager::Systemd => {
            let _ = systemctl(&["disable", "--now", &format!("{NAME}.service")]);
        }
        Manager::Launchd => {
            let _ = manager_cmd("launchctl", &["unload", "-w", &path.display().to_string()]);
        }
    }
    match std::fs::remove_file(&path) {
        Ok(()) => println!("removed {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("not installed ({} does not exist)", path.display());
        }
        Err(e) => return Err(Error::Unit(format!("{}: {e}", path.display()))),
    }
    if manager == Manager::Systemd && managed(args) {
        let _ = systemctl(&["daemon-reload"]);
    }
    Ok(())
}

/// `hypergolix service status`: true when installed.
pub fn status(args: &ManagerArgs) -> Result<bool> {
    let manager = args.manager.unwrap_or_else(Manager::native);
    let path = unit_path(args)?;
    if !path.exists() {
        println!("not installed ({} does not exist)", path.display());
        return Ok(false);
    }
    println!("installed: {}", path.display());
    let said = match manager {
        _ if !managed(args) => None,
        Manager::Systemd => systemctl(&["is-active", &format!("{NAME}.service")]),
        Manager::Launchd => manager_cmd("launchctl", &["list", LABEL]),
    };
    match said {
        Some(o) => println!(
            "service manager: {}",
            String::from_utf8_lossy(&o.stdout).trim()
        ),
        None => println!("service manager: not reachable from here"),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_name_the_binary_the_directory_and_the_credential() {
        let u = render(
            Manager::Systemd,
            Path::new("/opt/hgx/bin/hypergolix"),
            Path::new("/home/ann/.hypergolix"),
            Some(Path::new("/home/ann/.config/hgx-password")),
            None,
        )
        .expect("render");
        assert!(u.contains(
            "ExecStart=/opt/hgx/bin/hypergolix start --data-dir /home/ann/.hypergolix --password-file %d/password\n"
        ));
        assert!(u.contains("LoadCredential=password:/home/ann/.config/hgx-password\n"));
        assert!(u.contains("WantedBy=default.target"));
        let p = render(
            Manager::Launchd,
            Path::new("/opt/hgx/bin/hypergolix"),
            Path::new("/Users/ann/.hypergolix"),
            None,
            Some("AbC-_="),
        )
        .expect("render");
        assert!(p.contains("<string>--login</string>"));
        assert!(p.contains("<string>/Users/ann/.hypergolix</string>"));
        for bad in [
            "relative/hgx",
            "/with space/hgx",
            "/semi;colon",
            "/per%cent",
        ] {
            assert!(
                render(
                    Manager::Systemd,
                    Path::new(bad),
                    Path::new("/d"),
                    None,
                    None
                )
                .is_err(),
                "{bad}"
            );
        }
        assert!(render(
            Manager::Systemd,
            Path::new("/hgx"),
            Path::new("/d"),
            None,
            Some("x; rm -rf /")
        )
        .is_err());
    }
}
