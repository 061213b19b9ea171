//! What an auditor looks for: the byte strings that identify a node, and every file a data
//! directory holds.

use super::net::TestNode;

/// Every byte string of the person's node that could identify it: its PeerId (binary and
/// text), and each address and port it listens on.
pub fn identifying_bytes(node: &TestNode) -> Vec<(String, Vec<u8>)> {
    let peer = node.handle.peer_id();
    let mut out = vec![
        ("peer id bytes".to_string(), peer.to_bytes()),
        ("peer id text".to_string(), peer.to_string().into_bytes()),
    ];
    for addr in node.handle.listen_addrs() {
        out.push((format!("address {addr}"), addr.to_vec()));
        if let Some(port) = addr.iter().find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        }) {
            out.push((format!("port {port}"), format!("{port}").into_bytes()));
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, as bytes.
pub fn files(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
    out
}
