//! Real multi-process testnets for the integration tests: folders written by `synod testnet
//! init`, nodes started and killed through the `synod` binary, everything on 127.0.0.1 with
//! OS-chosen ports, and every node stopped when the test ends, however it ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use synod_chain::Store;
use synod_genesis::{Home, TestnetManifest};
use synod_node::rpc::client::RpcClient;

/// The `synod` binary, built (or brought up to date) once per test process; `SYNOD_BIN` names a
/// binary to use as it is instead (a copy no concurrent build of the shared target folder can
/// replace mid-run).
pub fn synod_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("SYNOD_BIN") {
            return PathBuf::from(bin);
        }
        let exe = std::env::current_exe().expect("the test binary has a path");
        // target/<profile>/deps/<test> -> target/<profile>/synod
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binaries live in target/<profile>/deps");
        let release = profile_dir.ends_with("release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", "synod", "--bin", "synod"]);
        if release {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("running cargo build for the synod binary");
        assert!(status.success(), "building the synod binary failed");
        profile_dir.join("synod")
    })
}

/// Runs `synod args...`.
pub fn synod(args: &[&str]) -> Output {
    Command::new(synod_bin())
        .args(args)
        .output()
        .expect("running the synod binary")
}

/// Runs `synod args...` and panics with its stderr if it fails.
pub fn synod_ok(args: &[&str]) -> String {
    let out = synod(args);
    assert!(
        out.status.success(),
        "synod {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// One live testnet at a time within a test binary: held for a test's whole run. Proof-of-work
/// miners would otherwise fight over two cores, a comparison's timings would measure the other
/// tests' load, and many testnets at once make it likely that
/// a port `testnet init` chose (free when the OS gave it) is taken, before its node binds it, by
/// another test's outbound connection from the same ephemeral range.
pub fn one_testnet_at_a_time() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A testnet folder whose nodes are stopped when it is dropped.
pub struct Testnet {
    /// Holds the folder.
    _tmp: tempfile::TempDir,
    /// The testnet folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: TestnetManifest,
}

impl Testnet {
    /// `synod testnet init` with these options (OS-chosen ports), nothing started yet.
    pub fn init(engine: &str, validators: usize, accounts: usize, extra: &[&str]) -> Testnet {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let dir = tmp.path().join("net");
        let (v, a) = (validators.to_string(), accounts.to_string());
        let mut args = vec![
            "testnet",
            "init",
            "--engine",
            engine,
            "--validators",
            &v,
            "--accounts",
            &a,
        ];
        let dir_text = dir.to_string_lossy().to_string();
        args.extend_from_slice(&["--dir", &dir_text]);
        args.extend_from_slice(extra);
        synod_ok(&args);
        let manifest = TestnetManifest::load(&dir).expect("the manifest");
        Testnet {
            _tmp: tmp,
            dir,
            manifest,
        }
    }

    fn dir_arg(&self) -> String {
        self.dir.to_string_lossy().to_string()
    }

    /// `synod testnet up`: starts every node and waits until connected and committing.
    pub fn up(&self) {
        synod_ok(&[
            "testnet",
            "up",
            "--dir",
            &self.dir_arg(),
            "--timeout",
            "120",
        ]);
    }

    /// SIGKILLs node `i`, which must be running (a node that died on its own fails the test,
    /// with the end of its log).
    pub fn kill(&self, i: usize) {
        assert!(
            is_running(&self.home(i)),
            "node{i} died on its own; the end of its log:\n{}",
            tail(&self.log(i), 40)
        );
        synod_ok(&[
            "testnet",
            "kill",
            &self.manifest.nodes[i].name,
            "--dir",
            &self.dir_arg(),
        ]);
        let home = self.home(i);
        wait_for(Duration::from_secs(10), "the killed node exits", || {
            !is_running(&home)
        });
    }

    /// Starts node `i`.
    pub fn start(&self, i: usize) {
        synod_ok(&[
            "testnet",
            "start",
            &self.manifest.nodes[i].name,
            "--dir",
            &self.dir_arg(),
        ]);
    }

    /// Starts node `i` as a Byzantine PBFT replica (`synod testnet start --byzantine`).
    pub fn start_byzantine(&self, i: usize, behaviour: &str) {
        synod_ok(&[
            "testnet",
            "start",
            &self.manifest.nodes[i].name,
            "--dir",
            &self.dir_arg(),
            "--byzantine",
            behaviour,
        ]);
    }

    /// Stops every node (SIGTERM, orderly).
    pub fn down(&self) {
        let _ = synod(&["testnet", "down", "--dir", &self.dir_arg()]);
    }

    /// Node `i`'s home folder.
    pub fn home(&self, i: usize) -> PathBuf {
        self.dir.join(&self.manifest.nodes[i].home)
    }

    /// A client for node `i`, with its credential (the `.cookie` it wrote when it started).
    pub fn client(&self, i: usize) -> RpcClient {
        RpcClient::new(&self.manifest.nodes[i].rpc)
            .with_timeout(Duration::from_secs(10))
            .with_token(Home::new(self.home(i)).read_cookie())
    }

    /// Node `i`'s status, if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        RpcClient::new(&self.manifest.nodes[i].rpc)
            .with_timeout(Duration::from_secs(2))
            .call("status", json!({}))
            .ok()
    }

    /// Node `i`'s committed height (0 if it does not answer).
    pub fn height(&self, i: usize) -> u64 {
        self.status(i)
            .and_then(|s| s["height"].as_u64())
            .unwrap_or(0)
    }

    /// The index of the current leader, among nodes that answer.
    pub fn leader(&self) -> Option<usize> {
        (0..self.manifest.nodes.len())
            .find(|i| self.status(*i).is_some_and(|s| s["role"] == "leader"))
    }

    /// Opens node `i`'s database (the node must be stopped).
    pub fn store(&self, i: usize) -> Store {
        let home = Home::new(self.home(i));
        let config = home.load_config().expect("config");
        Store::open_existing(&home.db_path(&config)).expect("the node's database")
    }

    /// The last lines of node `i`'s log.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.home(i).join("node.log")).unwrap_or_default()
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        // Orderly first, then make sure: a failing test must not leave nodes running.
        self.down();
        for i in 0..self.manifest.nodes.len() {
            let _ = synod(&[
                "testnet",
                "kill",
                &self.manifest.nodes[i].name,
                "--dir",
                &self.dir_arg(),
            ]);
        }
    }
}

/// A port the OS just handed out (free a moment ago).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a port")
}

/// Writes an observer's home for `net`'s chain in `net.dir/<name>`, dialing `peers`, with a fresh
/// key. Returns the home and its RPC address.
pub fn observer_home(net: &Testnet, name: &str, peers: Vec<String>) -> (Home, String) {
    let home = Home::new(net.dir.join(name));
    std::fs::create_dir_all(&home.dir).expect("the observer's folder");
    std::fs::copy(net.dir.join("genesis.json"), home.genesis_path()).expect("the genesis");
    synod_chain::keyfile::write_key_file(&home.key_path(), &synod_chain::SecretKey::generate())
        .expect("the observer's key");
    let rpc = format!("127.0.0.1:{}", free_port());
    home.save_config(&synod_genesis::NodeConfig {
        moniker: name.into(),
        listen: format!("127.0.0.1:{}", free_port()),
        rpc: rpc.clone(),
        peers,
        data_dir: "data".into(),
        log_level: "info".into(),
        role: synod_genesis::NodeRole::Observer,
        rpc_token: None,
        min_fee: 1,
        max_pending_txs: synod_genesis::DEFAULT_MAX_PENDING_TXS,
        mining: synod_genesis::MiningConfig::default(),
    })
    .expect("the observer's config");
    (home, rpc)
}

/// Starts `synod node --home <home>`; the process is killed when the guard drops.
pub fn start_node(home: &Home) -> crate::ChildGuard {
    let child = Command::new(synod_bin())
        .args(["node", "--home"])
        .arg(&home.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting synod node");
    crate::ChildGuard(child)
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether a node runs on `home` (its pid file names a live process), or is still exiting: a
/// killed node's leader thread shows as a zombie while its other threads still hold its files
/// and ports, and a node started meanwhile would find its ports taken.
pub fn is_running(home: &Path) -> bool {
    std::fs::read_to_string(home.join("node.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .is_some_and(|pid| {
            let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
                .map(|tasks| tasks.flatten().count())
                .unwrap_or(0);
            threads > 1
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|stat| !stat.contains(") Z "))
        })
}

/// Waits for `done`, polling, and panics after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, done: impl FnMut() -> bool) {
    assert!(poll_until(timeout, done), "{what}: not within {timeout:?}");
}

/// Polls `done` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn poll_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while !done() {
        if started.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
