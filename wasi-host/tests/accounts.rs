//! Keeping an account, as a user does it, over real processes and a real
//! `hypergolix serve`: the recovery words `create-account` prints restore
//! the account in a fresh data directory after the old one and its
//! password are gone (objects, shares and other agents' updates intact);
//! `passwd` and `recovery-words` need the current password, work with the
//! service running or not, and leave a second device working; words that
//! were replaced, words of no account and mistyped words open nothing and
//! write nothing.

#[path = "support/cli_proc.rs"]
mod cli_proc;
#[path = "support/serve_proc.rs"]
mod serve_proc;
#[path = "support/service_proc.rs"]
mod service_proc;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use cli_proc::{line, text};
use hypergolix_link::{ApiId, HypergolixLink, NewObj};
use serve_proc::{tempdir, Server};
use service_proc::Svc;

const WAIT: Duration = Duration::from_secs(20);

/// `hypergolix ARGS` on `dir` with `password` in the environment.
fn hgx(dir: &Path, password: &str, args: &[&str]) -> Output {
    cli_proc::run(dir, &dir.with_extension("cache"), password, args)
}

fn ok(dir: &Path, password: &str, args: &[&str]) -> String {
    cli_proc::succeeded(&hgx(dir, password, args), args)
}

fn fails(dir: &Path, password: &str, args: &[&str], why: &str) {
    cli_proc::failed(&hgx(dir, password, args), args, why)
}

/// A file only this user may read (the commands refuse others).
fn secret_file(path: &Path, content: &str) -> PathBuf {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("secret file");
    writeln!(f, "{content}").expect("write");
    path.to_path_buf()
}

/// Whether a data directory holds an account (`whoami` answers).
fn holds_account(dir: &Path) -> bool {
    hgx(dir, "", &["whoami"]).status.success()
}

/// Runs `f` until it returns `Some` or `WAIT` passes.
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(t0.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_words_restore_the_account_in_a_fresh_directory() {
    let dir = tempdir("accounts-recover");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let (laptop, bob_dir, fresh) = (dir.join("laptop"), dir.join("bob"), dir.join("fresh"));

    let created = ok(
        &laptop,
        "forgotten",
        &["create-account", "--remote", &remote, "--insecure-test-kdf"],
    );
    let words = line(&created, "recovery words: ").to_string();
    assert_eq!(words.split(' ').count(), 12, "{created}");
    assert!(created.contains("shown only this once"), "{created}");
    let user = line(&created, "user id: ").to_string();
    let svc = Svc::start_with(&laptop, false, &["--remote", &remote]);
    let bob_svc = Svc::start_with(&bob_dir, false, &["--remote", &remote]);
    // The service writes no words anywhere.
    for f in ["service.log", "config.toml"] {
        let t = std::fs::read_to_string(laptop.join(f)).unwrap_or_default();
        assert!(!t.contains(&words), "{f}");
    }

    let alice = HypergolixLink::connect(&svc.addr).await.expect("link");
    let bob = HypergolixLink::connect(&bob_svc.addr).await.expect("link");
    alice.new_token().await.expect("token");
    bob.new_token().await.expect("token");
    let api = ApiId::from_app_bytes([4; 64]);
    let opts = NewObj {
        api_id: api,
        ..NewObj::default()
    };
    let mine = alice.new_obj(b"mine".to_vec(), opts).await.expect("new");
    let ours = alice.new_obj(b"ours".to_vec(), opts).await.expect("new");
    let bobs = bob.new_obj(b"bob's".to_vec(), opts).await.expect("new");
    let (alice_id, bob_id) = (alice.whoami(), bob.whoami());
    until("alice's share", || async { ours.share(bob_id).await.ok() }).await;
    until("bob's share", || async { bobs.share(alice_id).await.ok() }).await;
    until("bob reads alice's object", || async {
        bob.get(ours.address()).await.ok()
    })
    .await;
    // Everything is at the server before the laptop goes.
    until("alice's objects at the server", || async {
        let fresh_link = bob.get(ours.address()).await.ok()?;
        (fresh_link.state() == b"ours").then_some(())
    })
    .await;
    alice.stop();
    drop(svc);
    std::fs::remove_dir_all(&laptop).expect("the laptop is gone");

    // Mistyped, cut short, never made: refused, and nothing is written.
    let swapped = (1..12)
        .map(|i| {
            let mut v: Vec<&str> = words.split(' ').collect();
            v.swap(0, i);
            v.join(" ")
        })
        .find(|w| hypergolix_core::engine::recovery::parse_words(w).is_err())
        .expect("a swap the checksum catches");
    let typo = secret_file(&dir.join("typo"), &swapped);
    let short = secret_file(&dir.join("short"), "abandon ability able");
    let new_pw = secret_file(&dir.join("new-pw"), "new password");
    let args = |words: &Path| {
        vec![
            "recover".to_string(),
            user.clone(),
            "--remote".into(),
            remote.clone(),
            "--insecure-test-kdf".into(),
            "--words-file".into(),
            words.display().to_string(),
            "--password-file".into(),
            new_pw.display().to_string(),
        ]
    };
    let run = |a: &[String]| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        hgx(&fresh, "", &a)
    };
    for (file, why) in [(&typo, "do not check out"), (&short, "expected 12 words")] {
        let o = run(&args(file));
        assert!(!o.status.success());
        assert!(text(&o).contains(why), "{}", text(&o));
        assert!(!fresh.exists(), "nothing written");
    }
    let never = secret_file(
        &dir.join("never"),
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
    );
    let o = run(&args(&never));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("do not open this account"),
        "{}",
        text(&o)
    );
    assert!(!holds_account(&fresh), "nothing written");

    // The words, typed in capitals with extra spaces: the account is back.
    let typed = secret_file(&dir.join("words"), &words.to_uppercase().replace(' ', "  "));
    let o = run(&args(&typed));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(line(&text(&o), "user id: "), user);
    // Once `recover` has finished (and before the recovered device runs
    // again), the new password opens the account on yet another device;
    // the forgotten one does not.
    let other = dir.join("other");
    ok(
        &other,
        "new password",
        &["login", &user, "--remote", &remote, "--insecure-test-kdf"],
    );
    let _ = std::fs::remove_dir_all(&other);
    fails(
        &other,
        "forgotten",
        &["login", &user, "--remote", &remote, "--insecure-test-kdf"],
        "wrong password",
    );
    let back = Svc::start_with(&fresh, false, &["--remote", &remote]);
    assert_eq!(back.identity, Some(alice_id));
    let alice = HypergolixLink::connect(&back.addr).await.expect("link");
    alice.new_token().await.expect("token");
    assert_eq!(
        alice.get(mine.address()).await.expect("mine").state(),
        b"mine"
    );
    let ours_back = alice.get(ours.address()).await.expect("ours");
    let bobs_back = alice.get(bobs.address()).await.expect("bob's");
    assert_eq!(bobs_back.state(), b"bob's");
    // Other agents' updates still arrive, and alice's still reach them.
    bobs.set_state(b"bob's v2".to_vec())
        .await
        .expect("bob updates");
    until("bob's update on the recovered device", || async {
        (bobs_back.state() == b"bob's v2").then_some(())
    })
    .await;
    ours_back
        .set_state(b"ours v2".to_vec())
        .await
        .expect("alice updates");
    let bobs_copy = bob.get(ours.address()).await.expect("bob's copy");
    until("alice's update at bob", || async {
        (bobs_copy.state() == b"ours v2").then_some(())
    })
    .await;
    alice.stop();
    bob.stop();
    drop((back, bob_svc, server));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwd_and_new_words_need_the_password_and_keep_a_second_device_working() {
    let dir = tempdir("accounts-passwd");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let (laptop, phone) = (dir.join("laptop"), dir.join("phone"));
    // The laptop's server in its settings: a service `passwd` starts for
    // itself uses it too.
    ok(&laptop, "", &["config", "set", "remote", &remote]);
    let created = ok(&laptop, "first", &["create-account", "--insecure-test-kdf"]);
    let first_words = line(&created, "recovery words: ").to_string();
    let user = line(&created, "user id: ").to_string();
    let laptop_svc = Svc::start(&laptop, false);
    let t0 = Instant::now();
    while !hgx(
        &phone,
        "first",
        &["login", &user, "--remote", &remote, "--insecure-test-kdf"],
    )
    .status
    .success()
    {
        // The laptop may not have published the account yet.
        assert!(t0.elapsed() < WAIT, "the phone cannot log in");
        let _ = std::fs::remove_dir_all(&phone);
        std::thread::sleep(Duration::from_millis(200));
    }
    let phone_svc = Svc::start_with(&phone, false, &["--remote", &remote]);

    // On the phone, with its service running: the current password first.
    let second = secret_file(&dir.join("second"), "second");
    let second_arg = second.display().to_string();
    let pd = phone.display().to_string();
    fails(
        &phone,
        "not it",
        &[
            "passwd",
            "--data-dir",
            &pd,
            "--new-password-file",
            &second_arg,
        ],
        "wrong password",
    );
    ok(
        &phone,
        "first",
        &[
            "passwd",
            "--data-dir",
            &pd,
            "--new-password-file",
            &second_arg,
        ],
    );

    // The laptop keeps working, and its objects reach the phone.
    let laptop_link = HypergolixLink::connect(&laptop_svc.addr)
        .await
        .expect("link");
    let phone_link = HypergolixLink::connect(&phone_svc.addr)
        .await
        .expect("link");
    laptop_link.new_token().await.expect("token");
    phone_link.new_token().await.expect("token");
    let note = laptop_link
        .new_obj(b"after the change".to_vec(), NewObj::default())
        .await
        .expect("new");
    until("the phone reads the laptop's object", || async {
        phone_link.get(note.address()).await.ok()
    })
    .await;

    // New words on the laptop (running), with the password the account
    // has now, which the laptop never typed.
    fails(&laptop, "first", &["recovery-words"], "wrong password");
    let o = ok(&laptop, "second", &["recovery-words"]);
    let second_words = line(&o, "recovery words: ").to_string();
    assert_ne!(second_words, first_words);

    // The laptop's service stopped: passwd runs one for itself.
    laptop_link.stop();
    drop(laptop_svc);
    let third = secret_file(&dir.join("third"), "third");
    let third_arg = third.display().to_string();
    let passwd = [
        "passwd",
        "--insecure-test-kdf",
        "--new-password-file",
        &third_arg,
    ];
    // Without the server in its settings, the embedded store is asked,
    // which holds no account: a clear refusal.
    ok(&laptop, "", &["config", "unset", "remote"]);
    fails(&laptop, "second", &passwd, "does not hold this account");
    ok(&laptop, "", &["config", "set", "remote", &remote]);
    ok(&laptop, "second", &passwd);
    assert!(
        !laptop.join("service.toml").exists(),
        "the service it ran is gone"
    );

    // The first words were replaced; the second open the account.
    let new_pw = secret_file(&dir.join("new-pw"), "fourth");
    let recover = |words_file: &Path, into: &Path| {
        hgx(
            into,
            "",
            &[
                "recover",
                &user,
                "--remote",
                &remote,
                "--insecure-test-kdf",
                "--words-file",
                &words_file.display().to_string(),
                "--password-file",
                &new_pw.display().to_string(),
            ],
        )
    };
    let old = secret_file(&dir.join("old-words"), &first_words);
    let o = recover(&old, &dir.join("r1"));
    assert!(!o.status.success());
    assert!(
        text(&o).contains("do not open this account"),
        "{}",
        text(&o)
    );
    let new = secret_file(&dir.join("new-words"), &second_words);
    let o = recover(&new, &dir.join("r2"));
    assert!(o.status.success(), "{}", text(&o));
    // The phone, never told, still works.
    let later = phone_link
        .new_obj(b"phone still works".to_vec(), NewObj::default())
        .await
        .expect("new on the phone");
    assert_eq!(later.state(), b"phone still works");
    phone_link.stop();
    drop((phone_svc, server));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The files of a data directory that would hold an account.
fn has_account_files(dir: &Path) -> bool {
    ["storage.key", "local.redb", "server.redb"]
        .iter()
        .any(|f| dir.join(f).exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_restore_an_account_kept_only_here() {
    let dir = tempdir("accounts-export");
    let (home, back, file) = (dir.join("home"), dir.join("back"), dir.join("account.hgx"));
    let f = file.display().to_string();
    ok(&home, "pw", &["create-account", "--insecure-test-kdf"]);
    let svc = Svc::start(&home, false);
    let link = HypergolixLink::connect(&svc.addr).await.expect("link");
    link.new_token().await.expect("token");
    let note = link
        .new_obj(b"v1".to_vec(), NewObj::default())
        .await
        .expect("new");
    note.set_state(b"v2".to_vec()).await.expect("update");
    let fixed = link
        .new_obj(
            b"static".to_vec(),
            NewObj {
                dynamic: false,
                ..NewObj::default()
            },
        )
        .await
        .expect("new static");
    let hd = home.display().to_string();
    fails(
        &home,
        "pw",
        &["export", &f, "--data-dir", &hd],
        "stop it first",
    );
    link.stop();
    drop(svc);

    // A password this device never saw (changed elsewhere, perhaps): the
    // file is locked with it, and the user is told.
    let other = dir.join("other-pw.hgx");
    let o = ok(
        &home,
        "changed elsewhere",
        &[
            "export",
            &other.display().to_string(),
            "--insecure-test-kdf",
        ],
    );
    assert!(
        o.contains("not the account password this device last saw"),
        "{o}"
    );
    let peek = dir.join("peek");
    fails(
        &peek,
        "pw",
        &[
            "import",
            &other.display().to_string(),
            "--insecure-test-kdf",
        ],
        "wrong password",
    );
    assert!(!file.exists());
    let o = ok(&home, "pw", &["export", &f, "--insecure-test-kdf"]);
    assert!(o.contains("stored objects"), "{o}");
    fails(&home, "pw", &["export", &f], "never overwrites");

    // Damaged, foreign or wrongly opened: refused, and nothing is written.
    let good = std::fs::read(&file).expect("export");
    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 1;
    let damaged = [
        (
            "cut.hgx",
            good[..good.len() / 2].to_vec(),
            "corrupted or cut short",
        ),
        ("flipped.hgx", flipped, "corrupted or cut short"),
        (
            "foreign.hgx",
            b"#!/bin/sh\necho hello\n".to_vec(),
            "not a Hypergolix export",
        ),
        ("header.hgx", good[..40].to_vec(), "cut short"),
    ];
    for (name, bytes, why) in damaged {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        fails(&back, "pw", &["import", &p.display().to_string()], why);
        assert!(!has_account_files(&back), "{name}: nothing written");
    }
    fails(
        &back,
        "wrong",
        &["import", &f, "--insecure-test-kdf"],
        "wrong password",
    );
    assert!(!has_account_files(&back));

    // The data directory is gone; the file alone brings the account back.
    std::fs::remove_dir_all(&home).expect("remove");
    let o = ok(&back, "pw", &["import", &f, "--insecure-test-kdf"]);
    assert!(o.contains("objects restored"), "{o}");
    fails(
        &back,
        "pw",
        &["import", &f],
        "import needs a data directory",
    );
    let svc = Svc::start(&back, false);
    let link = HypergolixLink::connect(&svc.addr).await.expect("link");
    link.new_token().await.expect("token");
    let again = link.get(note.address()).await.expect("the note");
    assert_eq!(again.state(), b"v2");
    assert_eq!(
        link.get(fixed.address()).await.expect("static").state(),
        b"static"
    );
    again.set_state(b"v3".to_vec()).await.expect("it goes on");
    link.stop();
    drop(svc);

    // Locked with recovery words instead.
    let words = secret_file(
        &dir.join("words"),
        "legal winner thank year wave sausage worth useful legal winner thank yellow",
    );
    let other = secret_file(
        &dir.join("other-words"),
        "letter advice cage absurd amount doctor acoustic avoid letter advice cage above",
    );
    let wf = dir.join("by-words.hgx").display().to_string();
    let bd = back.display().to_string();
    ok(
        &back,
        "",
        &[
            "export",
            &wf,
            "--with-words",
            "--words-file",
            &words.display().to_string(),
            "--insecure-test-kdf",
            "--data-dir",
            &bd,
        ],
    );
    let third = dir.join("third");
    fails(
        &third,
        "",
        &["import", &wf, "--words-file", &other.display().to_string()],
        "do not open",
    );
    assert!(!has_account_files(&third));
    ok(
        &third,
        "",
        &[
            "import",
            &wf,
            "--words-file",
            &words.display().to_string(),
            "--insecure-test-kdf",
        ],
    );
    let svc = Svc::start(&third, false);
    let link = HypergolixLink::connect(&svc.addr).await.expect("link");
    link.new_token().await.expect("token");
    assert_eq!(link.get(note.address()).await.expect("note").state(), b"v3");
    link.stop();
    drop(svc);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_device_syncs_with_its_server() {
    let dir = tempdir("accounts-import-sync");
    let server = Server::start(&dir.join("server.redb"), &[]);
    let remote = format!("ws://{}/", server.addr);
    let (laptop, bob_dir, back) = (dir.join("laptop"), dir.join("bob"), dir.join("back"));
    let file = dir.join("laptop.hgx");
    let f = file.display().to_string();
    ok(&laptop, "", &["config", "set", "remote", &remote]);
    ok(&laptop, "pw", &["create-account", "--insecure-test-kdf"]);
    let svc = Svc::start(&laptop, false);
    let bob_svc = Svc::start_with(&bob_dir, false, &["--remote", &remote]);
    let alice = HypergolixLink::connect(&svc.addr).await.expect("link");
    let bob = HypergolixLink::connect(&bob_svc.addr).await.expect("link");
    alice.new_token().await.expect("token");
    bob.new_token().await.expect("token");
    let alice_id = alice.whoami();
    let bobs = bob
        .new_obj(b"bob's".to_vec(), NewObj::default())
        .await
        .expect("new");
    until("bob's share", || async { bobs.share(alice_id).await.ok() }).await;
    until("alice has it", || async {
        alice.get(bobs.address()).await.ok()
    })
    .await;
    alice.stop();
    drop(svc);
    let o = ok(&laptop, "pw", &["export", &f, "--insecure-test-kdf"]);
    assert!(
        o.contains("0 stored objects"),
        "on a server: no store copied\n{o}"
    );
    std::fs::remove_dir_all(&laptop).expect("the laptop is gone");

    // Bob updates while the laptop is away; the imported device catches up.
    bobs.set_state(b"bob's v2".to_vec()).await.expect("update");
    ok(&back, "pw", &["import", &f, "--insecure-test-kdf"]);
    ok(&back, "", &["config", "set", "remote", &remote]);
    let svc = Svc::start(&back, false);
    let alice = HypergolixLink::connect(&svc.addr).await.expect("link");
    alice.new_token().await.expect("token");
    let copy = alice.get(bobs.address()).await.expect("bob's object");
    until("the update made while away", || async {
        (copy.state() == b"bob's v2").then_some(())
    })
    .await;
    bobs.set_state(b"bob's v3".to_vec()).await.expect("update");
    until("a live update", || async {
        (copy.state() == b"bob's v3").then_some(())
    })
    .await;
    alice.stop();
    bob.stop();
    drop((svc, bob_svc, server));
    let _ = std::fs::remove_dir_all(&dir);
}
