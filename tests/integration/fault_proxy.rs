//! A loopback TCP proxy that tests put between a pool and a server, and
//! faults they inject on command: drop the next reply, cut mid-stream, delay,
//! stall.
//!
//! It listens on `127.0.0.1:0` and forwards every accepted connection to the
//! server. Faults are deterministic: [`FaultProxy::arm`] applies a fault to
//! the next chunk the server sends back after a client sent bytes containing a
//! trigger (the text `COMMIT`, say), on that connection only, once. So a test
//! loses exactly the reply to its `COMMIT`: the server has executed it, the
//! client never learns the outcome. [`FaultProxy::stall`] makes the proxy
//! accept and forward nothing, in either direction, until
//! [`FaultProxy::release`]: a peer that is there but never answers.
//!
//! Shared with `benches/commit_faults.rs` (included there by path).

#![allow(dead_code)] // each includer uses a part

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// What happens to the server's chunk a fault is armed for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read the chunk, discard it, then cut the connection both ways.
    DropReply,
    /// Forward the first half of the chunk, then cut both ways.
    CutMidStream,
    /// Hold the chunk this long, then forward it.
    Delay(Duration),
}

/// An armed fault: the trigger not yet seen, or seen on connection `on`.
struct Armed {
    trigger: Vec<u8>,
    fault: Fault,
    on: Option<usize>,
}

#[derive(Default)]
struct State {
    armed: Vec<Armed>,
    stalled: bool,
    /// Open client sockets, to cut them all.
    clients: Vec<(usize, TcpStream)>,
}

struct Shared {
    server: SocketAddr,
    state: Mutex<State>,
    released: Condvar,
    next_id: AtomicUsize,
    fired: AtomicUsize,
    accepted: AtomicUsize,
    closed: AtomicBool,
}

/// The server's socket address in `url` (`scheme://user@host:port/db`).
pub fn server_addr(url: &str) -> SocketAddr {
    let rest = url.split_once("://").expect("a URL").1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    authority
        .to_socket_addrs()
        .expect("server address")
        .next()
        .expect("an address")
}

/// A fault-injecting proxy to one server; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy to `server` on a free loopback port.
    pub fn start(server: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            server,
            state: Mutex::new(State::default()),
            released: Condvar::new(),
            next_id: AtomicUsize::new(0),
            fired: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&shared);
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.closed.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                accepting.accepted.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&accepting);
                thread::spawn(move || shared.serve(client));
            }
        });
        FaultProxy { addr, shared }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` (`scheme://user@host:port/...`) pointed at this proxy, with
    /// what keeps the traffic visible to it: no TLS for PostgreSQL
    /// (`sslmode=disable`; libpq prefers TLS), and no switch to the Unix
    /// socket for mysql_async (`prefer_socket=false`: it asks the server for
    /// `@@socket` and reconnects there when the host is loopback).
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (user, rest) = rest.rsplit_once('@').map_or(("", rest), |(u, r)| (u, r));
        let path = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
        let at = if user.is_empty() { "" } else { "@" };
        let plain = match scheme {
            "postgres" | "postgresql" => "sslmode=disable",
            "mysql" => "prefer_socket=false",
            _ => "",
        };
        let separator = match (plain.is_empty(), path.contains('?')) {
            (true, _) => "",
            (false, true) => "&",
            (false, false) => "?",
        };
        format!("{scheme}://{user}{at}{}{path}{separator}{plain}", self.addr)
    }

    /// Applies `fault` once, to the next chunk the server sends on the
    /// connection whose client next sends bytes containing `trigger`.
    pub fn arm(&self, trigger: &str, fault: Fault) {
        self.shared.state.lock().unwrap().armed.push(Armed {
            trigger: trigger.as_bytes().to_vec(),
            fault,
            on: None,
        });
    }

    /// Removes every armed fault that has not fired.
    pub fn disarm(&self) {
        self.shared.state.lock().unwrap().armed.clear();
    }

    /// How many armed faults have fired.
    pub fn fired(&self) -> usize {
        self.shared.fired.load(Ordering::SeqCst)
    }

    /// How many client connections the proxy accepted.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// From now on, forward nothing and open no server connection: accepted
    /// clients wait, bytes in flight wait, until [`FaultProxy::release`].
    pub fn stall(&self) {
        self.shared.state.lock().unwrap().stalled = true;
    }

    /// Ends a stall: everything held moves on.
    pub fn release(&self) {
        self.shared.state.lock().unwrap().stalled = false;
        self.shared.released.notify_all();
    }

    /// Cuts every open connection now, both ways.
    pub fn cut_all(&self) {
        let clients = std::mem::take(&mut self.shared.state.lock().unwrap().clients);
        for (_, client) in clients {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.release();
        self.cut_all();
        // Wake the accept loop so it sees `closed`.
        let _ = TcpStream::connect(self.addr);
    }
}

impl Shared {
    fn wait_while_stalled(&self) {
        let mut state = self.state.lock().unwrap();
        while state.stalled && !self.closed.load(Ordering::SeqCst) {
            state = self.released.wait(state).unwrap();
        }
    }

    fn serve(self: Arc<Self>, client: TcpStream) {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.wait_while_stalled();
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(server) = TcpStream::connect(self.server) else {
            let _ = client.shutdown(Shutdown::Both);
            return;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        if let Ok(clone) = client.try_clone() {
            self.state.lock().unwrap().clients.push((id, clone));
        }
        let (Ok(client_reader), Ok(server_writer)) = (client.try_clone(), server.try_clone())
        else {
            return;
        };
        let upstream = Arc::clone(&self);
        thread::spawn(move || upstream.client_to_server(id, client_reader, server_writer));
        self.server_to_client(id, server, client);
    }

    fn client_to_server(&self, id: usize, mut client: TcpStream, mut server: TcpStream) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            {
                let mut state = self.state.lock().unwrap();
                let chunk = &buf[..n];
                if let Some(armed) = state.armed.iter_mut().find(|a| {
                    a.on.is_none()
                        && chunk
                            .windows(a.trigger.len())
                            .any(|w| w == a.trigger.as_slice())
                }) {
                    armed.on = Some(id);
                }
            }
            self.wait_while_stalled();
            if server.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
    }

    fn server_to_client(&self, id: usize, mut server: TcpStream, mut client: TcpStream) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let fault = {
                let mut state = self.state.lock().unwrap();
                let index = state.armed.iter().position(|a| a.on == Some(id));
                index.map(|i| state.armed.remove(i).fault)
            };
            self.wait_while_stalled();
            match fault {
                None => {}
                Some(Fault::DropReply) => {
                    self.fired.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                Some(Fault::CutMidStream) => {
                    self.fired.fetch_add(1, Ordering::SeqCst);
                    let _ = client.write_all(&buf[..n.div_ceil(2)]);
                    break;
                }
                Some(Fault::Delay(delay)) => {
                    self.fired.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(delay);
                }
            }
            if client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
        self.state.lock().unwrap().clients.retain(|(c, _)| *c != id);
    }
}

/// The proxy itself, against an echo server.
#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free loopback port: each connection gets back
    /// what it sends.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut stream = stream;
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn round_trip(stream: &mut TcpStream, text: &str) -> std::io::Result<String> {
        stream.write_all(text.as_bytes())?;
        let mut buf = vec![0u8; text.len()];
        stream.read_exact(&mut buf)?;
        Ok(String::from_utf8(buf).unwrap())
    }

    fn connect(proxy: &FaultProxy) -> TcpStream {
        let stream = TcpStream::connect(proxy.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
    }

    #[test]
    fn proxy_forwards_both_ways() {
        let proxy = FaultProxy::start(echo_server());
        let mut stream = connect(&proxy);
        for text in ["hello", "SELECT 1", "bye"] {
            assert_eq!(round_trip(&mut stream, text).unwrap(), text);
        }
        assert_eq!(proxy.fired(), 0);
    }

    #[test]
    fn drop_reply_loses_exactly_the_reply_to_the_trigger() {
        let proxy = FaultProxy::start(echo_server());
        let mut stream = connect(&proxy);
        proxy.arm("COMMIT", Fault::DropReply);
        // Bytes without the trigger pass.
        assert_eq!(round_trip(&mut stream, "INSERT").unwrap(), "INSERT");
        stream.write_all(b"COMMIT").unwrap();
        let mut buf = [0u8; 16];
        // The reply never comes: the connection is cut (end of stream or reset).
        let read = stream.read(&mut buf);
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert_eq!(proxy.fired(), 1);
        // Other connections, and later ones, are unaffected: it fired once.
        let mut other = connect(&proxy);
        assert_eq!(round_trip(&mut other, "COMMIT").unwrap(), "COMMIT");
    }

    #[test]
    fn fault_applies_to_the_connection_that_sent_the_trigger() {
        let proxy = FaultProxy::start(echo_server());
        let mut bystander = connect(&proxy);
        let mut victim = connect(&proxy);
        proxy.arm("COMMIT", Fault::DropReply);
        victim.write_all(b"xxCOMMITxx").unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(victim.read(&mut buf), Ok(0) | Err(_)));
        assert_eq!(round_trip(&mut bystander, "ok").unwrap(), "ok");
    }

    #[test]
    fn cut_mid_stream_forwards_half_then_closes() {
        let proxy = FaultProxy::start(echo_server());
        let mut stream = connect(&proxy);
        proxy.arm("COMMIT", Fault::CutMidStream);
        stream.write_all(b"COMMIT").unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got);
        assert_eq!(got, b"COM");
    }

    #[test]
    fn delay_holds_the_reply_then_forwards_it() {
        let proxy = FaultProxy::start(echo_server());
        let mut stream = connect(&proxy);
        proxy.arm("ping", Fault::Delay(Duration::from_millis(50)));
        assert_eq!(round_trip(&mut stream, "ping").unwrap(), "ping");
        assert_eq!(proxy.fired(), 1);
    }

    #[test]
    fn stall_holds_everything_until_released() {
        let proxy = Arc::new(FaultProxy::start(echo_server()));
        let mut existing = connect(&proxy);
        assert_eq!(round_trip(&mut existing, "before").unwrap(), "before");
        proxy.stall();
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = tx.clone();
        let waiting = thread::spawn(move || {
            let reply = round_trip(&mut existing, "held");
            sender.send("existing").unwrap();
            reply
        });
        let addr = proxy.addr();
        let opening = thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            let reply = round_trip(&mut stream, "new");
            tx.send("new").unwrap();
            reply
        });
        // Nothing comes back while stalled: the accept happened, no reply.
        assert!(crate::support::wait_until(Duration::from_secs(5), || proxy
            .accepted()
            == 2));
        assert!(rx.try_recv().is_err(), "a reply passed a stalled proxy");
        proxy.release();
        assert_eq!(waiting.join().unwrap().unwrap(), "held");
        assert_eq!(opening.join().unwrap().unwrap(), "new");
    }

    #[test]
    fn url_for_points_at_the_proxy() {
        let proxy = FaultProxy::start(echo_server());
        let addr = proxy.addr();
        assert_eq!(
            proxy.url_for("postgres://postgres@127.0.0.1:5432/db?x=1"),
            format!("postgres://postgres@{addr}/db?x=1&sslmode=disable")
        );
        assert_eq!(
            proxy.url_for("mysql://h:1/db"),
            format!("mysql://{addr}/db?prefer_socket=false")
        );
    }
}
