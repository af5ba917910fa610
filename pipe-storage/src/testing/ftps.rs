//! [`FtpsTestServer`]: vsftpd with TLS on loopback.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{Daemon, free_port, output, run};
use crate::FtpsConfig;

/// vsftpd on a free loopback port, explicit TLS required for the login and every data
/// connection (with TLS session reuse, as vsftpd insists), its certificate from a CA made
/// for it; killed when dropped. One local user logs in with a password, into a temporary
/// directory.
///
/// vsftpd logs local users in only when started as root, and the user
/// ([`FtpsTestServer::USER`], no shell, no home) must exist: `cargo xtask test` installs
/// vsftpd and makes the user and its PAM service. A test that finds neither fails: it is
/// never skipped.
#[derive(Debug)]
pub struct FtpsTestServer {
    daemon: Daemon,
    dir: tempfile::TempDir,
    port: u16,
}

impl FtpsTestServer {
    /// The user that logs in.
    pub const USER: &str = "pipe-ftp-test";
    /// Its password.
    pub const PASSWORD: &str = "pipe-ftp-test-password";
    /// The PAM service vsftpd checks the password with (`/etc/pam.d/pipe-ftp-test`).
    pub const PAM_SERVICE: &str = "pipe-ftp-test";

    /// Starts vsftpd and waits until it listens.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts vsftpd as a drop folder: it takes files and refuses to hand any back
    /// (`download_enable=NO`).
    pub fn start_write_only() -> Self {
        Self::start_with(true)
    }

    fn start_with(write_only: bool) -> Self {
        let uid = output(Command::new("id").arg("-u"));
        assert_eq!(
            uid.trim(),
            "0",
            "vsftpd logs local users in only when started as root"
        );
        let known = Command::new("id")
            .arg(Self::USER)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            known,
            "the user {} does not exist: `cargo xtask test` makes it",
            Self::USER
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = |name: &str| dir.path().join(name);
        // The user reaches its files through this directory, which tempfile makes 0700.
        run(Command::new("chmod").arg("755").arg(dir.path()));
        std::fs::create_dir(path("files")).expect("the files' directory");
        run(Command::new("chown").arg(Self::USER).arg(path("files")));
        // vsftpd's empty, unwritable directory for its unprivileged processes.
        std::fs::create_dir(path("empty")).expect("vsftpd's empty directory");
        make_certificates(dir.path());

        let port = free_port();
        let config = format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n\
             background=NO\nanonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\n\
             local_umask=022\nlocal_root={files}\npam_service_name={pam}\n\
             download_enable={download}\n\
             ssl_enable=YES\nrsa_cert_file={cert}\nrsa_private_key_file={key}\n\
             force_local_logins_ssl=YES\nforce_local_data_ssl=YES\nrequire_ssl_reuse=YES\n\
             ssl_tlsv1=NO\nssl_sslv2=NO\nssl_sslv3=NO\n\
             secure_chroot_dir={empty}\nseccomp_sandbox=NO\nisolate_network=NO\n\
             pasv_address=127.0.0.1\nxferlog_enable=YES\nvsftpd_log_file={log}\n",
            files = path("files").display(),
            pam = Self::PAM_SERVICE,
            download = if write_only { "NO" } else { "YES" },
            cert = path("server.pem").display(),
            key = path("server.key").display(),
            empty = path("empty").display(),
            log = path("vsftpd.log").display(),
        );
        std::fs::write(path("vsftpd.conf"), config).expect("vsftpd's configuration");
        let daemon = Daemon::start(
            "vsftpd",
            "/usr/sbin/vsftpd".into(),
            vec![path("vsftpd.conf").into()],
            port,
        );
        Self { daemon, dir, port }
    }

    /// The directory the user logs in to, where the tests' objects go.
    pub fn files_dir(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) the server's certificate chains to.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).expect("the CA certificate")
    }

    /// A config for the server: the user and its password, the test CA, the login
    /// directory as the folder.
    pub fn config(&self) -> FtpsConfig {
        FtpsConfig::new("127.0.0.1", Self::USER, Self::PASSWORD)
            .with_port(self.port)
            .with_ca_pem(self.ca_pem())
    }

    /// Stops the server (the port stays its own: [`FtpsTestServer::restart`] brings it
    /// back on the same one).
    pub fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts the stopped server again, with the same configuration and files.
    pub fn restart(&mut self) {
        self.daemon.restart();
    }
}

/// A CA and a certificate it signs for `127.0.0.1` and `localhost`, with OpenSSL's
/// command line (test set-up only; Pipe itself links no OpenSSL).
fn make_certificates(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let mut command = Command::new("openssl");
        command
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        run(&mut command);
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        &[
            &["req", "-x509", "-nodes", "-days", "2"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=pipe test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-nodes"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("the certificate's extensions");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}
