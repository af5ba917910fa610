//! The PostgreSQL test server: a real cluster on loopback, a database for each test.

use std::net::TcpStream;
use std::process::Command;

use pipe_storage::testing::PostgresTestServer;

/// What `psql` prints for `sql` run on the database at `url`.
fn psql(server: &PostgresTestServer, url: &str, sql: &str) -> String {
    let out = Command::new(server.bin_dir().join("psql"))
        .arg(url)
        .args(["-X", "-tAc", sql])
        .output()
        .expect("cannot run psql");
    assert!(
        out.status.success(),
        "psql {url} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn databases_answer_until_the_server_stops() {
    let mut server = PostgresTestServer::start();
    assert_eq!(
        server.url(),
        format!("postgres://postgres@127.0.0.1:{}/postgres", server.port())
    );
    let first = server.create_database();
    let second = server.create_database();
    assert_ne!(first, second);
    for url in [&server.url(), &first, &second] {
        assert_eq!(psql(&server, url, "select 1"), "1");
        let name = url.rsplit('/').next().unwrap();
        assert_eq!(psql(&server, url, "select current_database()"), name);
    }

    server.stop();
    assert!(
        TcpStream::connect(("127.0.0.1", server.port())).is_err(),
        "the port still accepts connections after stop()"
    );
}
