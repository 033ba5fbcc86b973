//! A private PostgreSQL cluster for the tests: `initdb` in a temporary folder, the server on
//! 127.0.0.1 and a free port, run by an unprivileged user when the tests run as root (PostgreSQL
//! refuses to run as root), and stopped — with everything it started — when the cluster is
//! dropped, also when a test fails. No mock database: the relay's PostgreSQL store is tested
//! against the real server.
//!
//! The binaries come from `CLIENTELE_PG_BIN`, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package; the CI image has PostgreSQL 15's).
//! Without them, [`PgCluster::available`] says why, and tests skip with that reason unless
//! `CLIENTELE_REQUIRE_PG=1` makes it a failure.
//!
//! The server runs in the foreground under a [`ProcessGuard`] (never `pg_ctl start`, which would
//! leave a daemon no guard knows about), with `fsync=off`: a test kills and restarts the server
//! to see that nothing a relay acknowledged is lost, which a killed process can't lose with or
//! without fsync; only a power cut could, and the benchmarks measure with fsync on.

use crate::guard::ProcessGuard;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the server gets to accept connections: generous for a busy two-core machine.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// The superuser the cluster is made with, and its password.
pub const USER: &str = "clientele";
pub const PASSWORD: &str = "pg-test-password-0123";

/// How to start a cluster: plain (the default), or serving TLS with a certificate the test made,
/// and then perhaps accepting only TLS connections.
#[derive(Debug, Default, Clone)]
pub struct PgOptions {
    /// `ssl=on` with this certificate (chain) and key, both PEM.
    pub tls: Option<ServerTls>,
    /// pg_hba.conf's TCP lines as `hostssl`: connections without TLS are turned away, as a
    /// managed database does.
    pub hostssl_only: bool,
    /// `fsync=on`, as benchmarks measure (tests run with it off: see the module docs).
    pub durable: bool,
}

/// A server certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A running private cluster.
#[derive(Debug)]
pub struct PgCluster {
    bin: PathBuf,
    /// Holds the data folder; removed on drop, after the server stopped.
    dir: tempfile::TempDir,
    pub port: u16,
    /// Who runs the server (`None`: this process's own user).
    run_as: Option<(u32, u32)>,
    server: Option<ProcessGuard>,
    log: PathBuf,
    /// Started with `ssl=on` (server.crt and server.key in the data folder).
    ssl: bool,
    /// `fsync=on` ([`PgCluster::start_durable`]) or off (the tests).
    fsync: bool,
}

impl PgCluster {
    /// Where PostgreSQL's server binaries are, or why there are none.
    pub fn available() -> Result<PathBuf, String> {
        if let Some(dir) = std::env::var_os("CLIENTELE_PG_BIN") {
            let dir = PathBuf::from(dir);
            return if dir.join("initdb").exists() {
                Ok(dir)
            } else {
                Err(format!("CLIENTELE_PG_BIN={} has no initdb", dir.display()))
            };
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
            && out.status.success()
        {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if dir.join("initdb").exists() {
                return Ok(dir);
            }
        }
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, bin)| bin).ok_or_else(|| {
            "PostgreSQL's server isn't installed (no initdb): install Debian's postgresql package, or set CLIENTELE_PG_BIN".to_string()
        })
    }

    /// Whether a test needing PostgreSQL may skip: false when `CLIENTELE_REQUIRE_PG=1`.
    pub fn may_skip() -> bool {
        std::env::var("CLIENTELE_REQUIRE_PG").as_deref() != Ok("1")
    }

    /// Makes and starts a new cluster. Panics (failing the test) when it can't.
    pub fn start() -> PgCluster {
        Self::start_with(PgOptions::default())
    }

    /// Makes and starts a new cluster whose commits are durable: `fsync=on` and every other
    /// setting PostgreSQL's default (`synchronous_commit=on` among them), as the benchmarks
    /// measure. Panics when it can't.
    pub fn start_durable() -> PgCluster {
        Self::start_with(PgOptions {
            durable: true,
            ..PgOptions::default()
        })
    }

    /// Makes and starts a new cluster as `options` say. Panics (failing the test) when it
    /// can't.
    pub fn start_with(options: PgOptions) -> PgCluster {
        let bin = Self::available().unwrap_or_else(|why| panic!("{why}"));
        let dir = tempfile::Builder::new()
            .prefix("clientele-pg-")
            .tempdir()
            .expect("a folder for the cluster");
        let run_as = unprivileged_user();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("the password file");
        if let Some((uid, gid)) = run_as {
            chown_tree(dir.path(), uid, gid);
        }
        let out = as_user(run_as, &bin.join("initdb"))
            .arg("--pgdata")
            .arg(&data)
            .args([
                "--username",
                USER,
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
            ])
            .arg("--pwfile")
            .arg(&pwfile)
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if let Some(tls) = &options.tls {
            // PostgreSQL wants the key readable by its own user only.
            use std::os::unix::fs::PermissionsExt;
            for (name, pem, mode) in [
                ("server.crt", &tls.cert_pem, 0o644),
                ("server.key", &tls.key_pem, 0o600),
            ] {
                let path = data.join(name);
                std::fs::write(&path, pem).expect("the server's certificate files");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                    .expect("the certificate files' permissions");
                if let Some((uid, gid)) = run_as {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid))
                        .expect("give the certificate files away");
                }
            }
        }
        if options.hostssl_only {
            let hba = data.join("pg_hba.conf");
            let text = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
            let only_tls: String = text
                .lines()
                .map(|l| match l.strip_prefix("host ") {
                    Some(rest) => format!("hostssl {rest}\n"),
                    None => format!("{l}\n"),
                })
                .collect();
            std::fs::write(&hba, only_tls).expect("write pg_hba.conf");
        }
        let log = dir.path().join("server.log");
        let mut cluster = PgCluster {
            bin,
            dir,
            port,
            run_as,
            server: None,
            log,
            ssl: options.tls.is_some(),
            fsync: options.durable,
        };
        cluster.start_server();
        cluster
    }

    /// `postgres://clientele:PASSWORD@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Runs `sql` with `psql` against `database` and returns what it printed (unaligned, no
    /// headers). Panics when psql fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER])
            .args([
                "-d",
                database,
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
    }

    /// Stops the server at once, as a crash would (SIGKILL to its whole process group).
    pub fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill9();
        }
        // A killed postmaster leaves its pid file; the next start checks that no such process
        // runs, so it can stay.
    }

    /// Starts the server again on the same data and port (after [`PgCluster::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.start_server();
    }

    /// The server's log so far (for failure messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn start_server(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the server's log");
        if let Some((uid, gid)) = self.run_as {
            let _ = std::os::unix::fs::chown(&self.log, Some(uid), Some(gid));
        }
        let mut cmd = as_user(self.run_as, &self.bin.join("postgres"));
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("port={}", self.port)])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .arg("-c")
            .arg(if self.fsync { "fsync=on" } else { "fsync=off" })
            .args(["-c", "max_connections=200"]);
        if self.ssl {
            cmd.args(["-c", "ssl=on"]);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("the server's log"))
            .stderr(log);
        self.server = Some(
            ProcessGuard::spawn("postgres", &mut cmd, Duration::from_secs(10))
                .expect("start postgres"),
        );
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL didn't accept connections within {READY_WITHIN:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether something accepts connections on the cluster's port.
    pub fn listening(&self) -> bool {
        TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Who runs the server when this process is root: the `postgres` user where there is one, else
/// `nobody`. `None` when not root.
fn unprivileged_user() -> Option<(u32, u32)> {
    if current_uid() != 0 {
        return None;
    }
    for name in ["postgres", "nobody"] {
        let out = Command::new("id").args(["-u", name]).output().ok()?;
        let group = Command::new("id").args(["-g", name]).output().ok()?;
        if out.status.success() && group.status.success() {
            let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
            let gid = String::from_utf8_lossy(&group.stdout).trim().parse().ok()?;
            return Some((uid, gid));
        }
    }
    panic!(
        "running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as"
    );
}

/// This process's user id, from `/proc/self/status` (no unsafe code, no extra crate).
fn current_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().next().map(str::to_string))
        })
        .and_then(|uid| uid.parse().ok())
        .unwrap_or(u32::MAX)
}

/// `program`, run as `user` (through `setpriv`, which execs it: the guard's process is the
/// program itself).
fn as_user(user: Option<(u32, u32)>, program: &Path) -> Command {
    match user {
        None => Command::new(program),
        Some((uid, gid)) => {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            cmd
        }
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("give the cluster's folder away");
    if path.is_dir() {
        for entry in std::fs::read_dir(path)
            .expect("read the cluster's folder")
            .flatten()
        {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}
