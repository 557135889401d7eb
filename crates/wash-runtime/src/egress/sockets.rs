//! The `wasi:sockets` egress policy: which addresses a guest may connect to.
//!
//! Outbound TCP and UDP go only to addresses the component's `allowed_hosts`
//! name (as an address, or as a host name that resolves to it). Loopback is
//! reachable only on `allowed_host_loopback_ports`. Private and special
//! ranges are reachable only through a rule naming the address, or when the
//! host allows private networks: a host name resolving into them does not
//! open them. Guests never listen or accept.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use wasmtime_wasi::sockets::SocketAddrUse;

use super::OutgoingRequestContext;

/// The socket policy of one component (its addresses are in the context).
#[derive(Debug)]
pub(crate) struct SocketPolicy {
    pub(crate) context: Arc<OutgoingRequestContext>,
}

impl SocketPolicy {
    pub(crate) async fn allows(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let allowed = match use_ {
            // Implicit binds (to an ephemeral port) before connect or send.
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => {
                addr.ip().is_unspecified() && addr.port() == 0
            }
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                self.outbound(addr).await
            }
            // Future uses: refuse until understood.
            #[allow(unreachable_patterns, reason = "the enum may grow")]
            _ => false,
        };
        if !allowed && !matches!(use_, SocketAddrUse::UdpReceive) {
            tracing::warn!(
                workload = %self.context.workload_id,
                component = %self.context.component,
                %addr,
                ?use_,
                "socket use denied by the component's egress policy"
            );
        }
        allowed
    }

    async fn outbound(&self, addr: SocketAddr) -> bool {
        let policy = &self.context.addresses;
        let (ip, port) = (super::canonical(addr.ip()), addr.port());
        // Loopback and private ranges: only what the policy opens (a name
        // resolving there does not open it).
        if !policy.permits(addr) {
            return false;
        }
        if ip.is_loopback() || policy.allowed.allows(&ip.to_string(), port) {
            return true;
        }
        // Otherwise the address must be one an allowed name resolves to.
        for name in policy.allowed.names_for_port(port) {
            if let Ok(resolved) = tokio::net::lookup_host((name, port)).await
                && resolved.into_iter().any(|a| a.ip() == ip)
            {
                return true;
            }
        }
        false
    }
}

/// Private, link-local, shared, documentation, multicast and other
/// addresses that are not on the public internet.
pub(crate) fn is_special(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || (a == 100 && (64..128).contains(&b)) // shared address space
                || a == 0
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_special(IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], loopback: &[u16]) -> SocketPolicy {
        SocketPolicy {
            context: Arc::new(OutgoingRequestContext {
                workload_id: "w".into(),
                component: "c".into(),
                addresses: Arc::new(super::super::AddressPolicy::new(
                    super::super::AllowedHosts::new(allowed),
                    loopback.to_vec(),
                    false,
                )),
            }),
        }
    }

    #[tokio::test]
    async fn loopback_only_on_listed_ports() {
        let p = policy(&[], &[7000]);
        assert!(
            p.allows("127.0.0.1:7000".parse().unwrap(), SocketAddrUse::TcpConnect)
                .await
        );
        assert!(
            !p.allows("127.0.0.1:7001".parse().unwrap(), SocketAddrUse::TcpConnect)
                .await
        );
        assert!(
            !p.allows("10.1.2.3:7000".parse().unwrap(), SocketAddrUse::TcpConnect)
                .await
        );
    }

    #[tokio::test]
    async fn explicit_addresses_and_names() {
        let p = policy(&["10.1.2.3:5432", "localhost:6000"], &[]);
        assert!(
            p.allows("10.1.2.3:5432".parse().unwrap(), SocketAddrUse::TcpConnect)
                .await
        );
        assert!(
            !p.allows("10.1.2.3:5433".parse().unwrap(), SocketAddrUse::TcpConnect)
                .await
        );
        assert!(
            !p.allows("10.9.9.9:5432".parse().unwrap(), SocketAddrUse::TcpConnect)
                .await
        );
    }

    #[tokio::test]
    async fn never_listens_and_binds_only_ephemerally() {
        let p = policy(&["0.0.0.0"], &[80]);
        assert!(
            p.allows("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpBind)
                .await
        );
        assert!(
            !p.allows("0.0.0.0:80".parse().unwrap(), SocketAddrUse::TcpBind)
                .await
        );
        assert!(
            !p.allows("0.0.0.0:0".parse().unwrap(), SocketAddrUse::TcpListen)
                .await
        );
    }

    #[test]
    fn special_ranges() {
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_special(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["1.1.1.1", "2606:4700::1111"] {
            assert!(!is_special(ip.parse().unwrap()), "{ip}");
        }
    }
}
