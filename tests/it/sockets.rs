//! Every TCP connection to the database sends a statement at once. Without TCP_NODELAY a
//! statement written in two parts waits for the server's delayed acknowledgement of the first
//! (Nagle): about 40 ms that neither side spends working. sqlx 0.9.0 had dropped the option; the
//! sweep then spent three quarters of its time idle in transaction (BENCHMARKS.md, issue #22).

use std::net::SocketAddr;

use crate::helpers::TestDb;

/// The peer address and the TCP_NODELAY flag of each TCP socket this process holds open.
fn tcp_sockets() -> Vec<(SocketAddr, bool)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd") {
        let Ok(entry) = entry else { continue };
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let mut flag: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a plain getsockopt on a descriptor this process holds; one that is not a TCP
        // socket (or was closed meanwhile) answers with an error and is skipped.
        let ok = unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, (&mut flag as *mut libc::c_int).cast(), &mut len) } == 0;
        if !ok {
            continue;
        }
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut size = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: as above; the buffer is large enough for any address family.
        if unsafe { libc::getpeername(fd, (&mut storage as *mut libc::sockaddr_storage).cast(), &mut size) } != 0 {
            continue;
        }
        let peer = match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the family says which address the storage holds.
                let a: libc::sockaddr_in = unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
                SocketAddr::from((u32::from_be(a.sin_addr.s_addr).to_be_bytes(), u16::from_be(a.sin_port)))
            }
            libc::AF_INET6 => {
                // SAFETY: as above.
                let a: libc::sockaddr_in6 = unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
                SocketAddr::from((a.sin6_addr.s6_addr, u16::from_be(a.sin6_port)))
            }
            _ => continue,
        };
        out.push((peer, flag != 0));
    }
    out
}

#[tokio::test]
async fn every_database_connection_sends_without_delay() {
    let Ok(url) = std::env::var("PLEDGEFLOW_TEST_DATABASE_URL") else { return };
    if url.is_empty() {
        return;
    }
    let db = TestDb::postgres(&url).await;
    let options = url.parse::<sea_orm::sqlx::postgres::PgConnectOptions>().expect("a PostgreSQL URL");
    let (host, port) = (options.get_host().to_string(), options.get_port());
    // The server's pool and a read replica's pool are both made by `store::connect`; several
    // connections held at once, each having run a statement.
    // The probe sees the flag: a plain socket to the same port, opened without it, is reported so.
    let plain = std::net::TcpStream::connect((host.as_str(), port)).unwrap();
    let mine = plain.local_addr().unwrap();
    let seen = tcp_sockets();
    assert!(seen.iter().any(|(peer, nodelay)| peer.port() == port && !nodelay), "the probe did not see a socket without TCP_NODELAY ({mine}): {seen:?}");
    drop(plain);
    let pool = pledgeflow::store::connect(&db.url, 4).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        let txn = sea_orm::TransactionTrait::begin(&pool).await.unwrap();
        sea_orm::ConnectionTrait::execute_unprepared(&txn, "SELECT 1").await.unwrap();
        held.push(txn);
    }
    let to_database: Vec<(SocketAddr, bool)> = tcp_sockets().into_iter().filter(|(peer, _)| peer.port() == port).collect();
    assert!(to_database.len() >= 3, "the pool's connections were not found among this process's sockets: {to_database:?}");
    // Other tests' connections (the same code) are checked too: the class, not one pool.
    let delayed: Vec<_> = to_database.iter().filter(|(_, nodelay)| !nodelay).collect();
    assert!(delayed.is_empty(), "database connections without TCP_NODELAY: {delayed:?}");
    drop(held);
    pool.close().await.unwrap();
    db.cleanup().await;
}
