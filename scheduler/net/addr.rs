//! Name resolution off the workers.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `addr`. Inside a coroutine the lookup (which may query DNS and block)
/// runs on the blocking pool while the coroutine parks.
pub(super) fn resolve<A: ToSocketAddrs + Sync + ?Sized>(addr: &A) -> io::Result<Vec<SocketAddr>> {
    if is_literal::<A>() {
        return addr.to_socket_addrs().map(|it| it.collect());
    }
    crate::blocking::blocking_scoped(|| addr.to_socket_addrs().map(|it| it.collect()))
}

/// Whether `A` is one of `std`'s address types that convert without a lookup
/// (`SocketAddr`, an `(IpAddr, u16)` pair, ...), so the pool's hand-off (tens of
/// microseconds) is skipped. Names are matched by their type name; an unknown
/// spelling only means the slower, equally correct path.
fn is_literal<A: ?Sized>() -> bool {
    let name = std::any::type_name::<A>();
    let name = name.trim_start_matches('&');
    const LITERAL: [&str; 6] = [
        "SocketAddr",
        "SocketAddrV4",
        "SocketAddrV6",
        "IpAddr, u16)",
        "Ipv4Addr, u16)",
        "Ipv6Addr, u16)",
    ];
    (name.starts_with("core::net::")
        || name.starts_with("std::net::")
        || name.starts_with('(')
        || name.starts_with('['))
        && !name.contains("str")
        && !name.contains("String")
        && LITERAL
            .iter()
            .any(|l| name.ends_with(l) || name.ends_with(&format!("{l}]")))
}

/// Tries `f` on every address `addr` resolves to, in order, returning the first
/// success or else the last error (as `std::net` does).
pub(super) fn each_addr<A, T>(
    addr: &A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T>
where
    A: ToSocketAddrs + Sync + ?Sized,
{
    let addrs = resolve(addr)?;
    let mut last = None;
    for a in &addrs {
        match f(a) {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::is_literal;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

    #[test]
    fn address_types_skip_the_pool_and_names_do_not() {
        assert!(is_literal::<SocketAddr>());
        assert!(is_literal::<&SocketAddr>());
        assert!(is_literal::<SocketAddrV4>());
        assert!(is_literal::<(IpAddr, u16)>());
        assert!(is_literal::<(Ipv4Addr, u16)>());
        assert!(is_literal::<[SocketAddr]>());
        assert!(!is_literal::<&str>());
        assert!(!is_literal::<str>());
        assert!(!is_literal::<String>());
        assert!(!is_literal::<(&str, u16)>());
        assert!(!is_literal::<(String, u16)>());
    }
}
