//! A PostgreSQL server of a test's (or the chaos runner's) own: `initdb` into a temp
//! dir, listening on a port of its own, stopped and started by whoever needs an outage,
//! and stopped when dropped. The machine's shared PostgreSQL is never touched. As root
//! (CI), the server runs as the `postgres` user, since PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    /// A fresh cluster, started; panics with the tool's output if it cannot be.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let own = Self {
            bin: bin_dir(),
            port: free_port(),
            dir,
        };
        if running_as_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(own.dir.path()));
        }
        let data = own.data_dir();
        run(own.tool("initdb").arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        own.resume();
        own
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server at once (`-m fast`): clients' connections break.
    pub fn stop(&self) {
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"]));
    }

    /// Starts the server again, on the same port, and waits until it accepts clients.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.path().display()
        );
        run(self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-o", &options, "start"]));
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `name` from PostgreSQL's binaries, as the `postgres` user when we are root.
    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Where Debian's packages put the server's binaries (the newest version installed).
fn bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .expect("PostgreSQL's server binaries are installed (Debian's postgresql package)")
        .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql")
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}
