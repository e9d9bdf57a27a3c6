//! `net.cidr_intersects` and `net.cidr_contains_matches`, which regorus's
//! `net` group lacks, with OPA's (Go's) reading of addresses: an IPv4-mapped
//! IPv6 address or network is the IPv4 one, and the two families never
//! contain each other.

use std::collections::BTreeSet;
use std::net::IpAddr;

use regorus::Value;

use super::jwt::type_name;

/// A network: address family, address as a number, prefix length.
#[derive(Debug, Clone, Copy)]
struct Net {
    v4: bool,
    addr: u128,
    prefix: u32,
}

impl Net {
    fn bits(self) -> u32 {
        if self.v4 { 32 } else { 128 }
    }

    /// The network mask as a number of the family's width.
    fn mask(self) -> u128 {
        let bits = self.bits();
        let p = self.prefix.min(bits);
        if p == 0 {
            return 0;
        }
        let ones = if p == 128 {
            u128::MAX
        } else {
            (1u128 << p) - 1
        };
        ones << (bits - p)
    }

    /// Whether the address `addr` of the same family lies in this network.
    fn contains_addr(self, v4: bool, addr: u128) -> bool {
        self.v4 == v4 && (addr & self.mask()) == (self.addr & self.mask())
    }

    /// Whether `other` (a network or an address) lies wholly in this one.
    fn contains(self, other: Net) -> bool {
        other.prefix >= self.prefix && self.contains_addr(other.v4, other.addr)
    }

    fn network(self) -> u128 {
        self.addr & self.mask()
    }
}

fn address(text: &str) -> Option<(bool, u128)> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some((true, u128::from(u32::from(a)))),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Some((true, u128::from(u32::from(v4)))),
            None => Some((false, u128::from(a))),
        },
    }
}

fn cidr(text: &str) -> Option<Net> {
    let (ip, prefix) = text.split_once('/')?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix: u32 = prefix.parse().ok()?;
    let mapped = ip.contains(':');
    let (v4, addr) = address(ip)?;
    let prefix = match (v4, mapped) {
        (true, true) => {
            if prefix > 128 {
                return None;
            }
            prefix.saturating_sub(96)
        }
        (true, false) if prefix > 32 => return None,
        (false, _) if prefix > 128 => return None,
        _ => prefix,
    };
    Some(Net { v4, addr, prefix })
}

fn cidr_arg(value: &Value, name: &str, n: usize) -> Result<Net, String> {
    let text = super::jwt::string_arg(value, name, n)?;
    cidr(text).ok_or_else(|| format!("{name}: invalid CIDR address: `{text}`"))
}

/// `net.cidr_intersects(a, b)`.
pub(super) fn cidr_intersects(args: &[Value]) -> Result<Value, String> {
    const NAME: &str = "net.cidr_intersects";
    let a = cidr_arg(args.first().unwrap_or(&Value::Undefined), NAME, 1)?;
    let b = cidr_arg(args.get(1).unwrap_or(&Value::Undefined), NAME, 2)?;
    Ok(Value::from(
        a.contains_addr(b.v4, b.network()) || b.contains_addr(a.v4, a.network()),
    ))
}

/// The `(key, text)` pairs of an operand: a string is its own key, an
/// array's keys are indices, a set's its elements, an object's its keys;
/// an element that is an array stands for its first element.
fn entries(value: &Value, name: &str, n: usize) -> Result<Vec<(Value, String)>, String> {
    let text_of = |v: &Value| -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.to_string()),
            Value::Array(items) => match items.first() {
                Some(Value::String(s)) => Ok(s.to_string()),
                _ => Err(format!(
                    "{name}: operand {n}: an array element must start with a string"
                )),
            },
            other => Err(format!(
                "{name}: operand {n}: expected strings, got {}",
                type_name(other)
            )),
        }
    };
    Ok(match value {
        Value::String(s) => vec![(value.clone(), s.to_string())],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| Ok((Value::from(i as u64), text_of(v)?)))
            .collect::<Result<_, String>>()?,
        Value::Set(items) => items
            .iter()
            .map(|v| Ok((v.clone(), text_of(v)?)))
            .collect::<Result<_, String>>()?,
        Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| Ok((k.clone(), text_of(v)?)))
            .collect::<Result<_, String>>()?,
        other => {
            return Err(format!(
                "{name}: operand {n} must be string, array, set or object but got {}",
                type_name(other)
            ));
        }
    })
}

/// `net.cidr_contains_matches(cidrs, cidrs_or_ips)`: the set of
/// `[key of a cidr, key of what it contains]`.
pub(super) fn cidr_contains_matches(args: &[Value]) -> Result<Value, String> {
    const NAME: &str = "net.cidr_contains_matches";
    let cidrs = entries(args.first().unwrap_or(&Value::Undefined), NAME, 1)?;
    let others = entries(args.get(1).unwrap_or(&Value::Undefined), NAME, 2)?;
    let mut parsed_cidrs = Vec::with_capacity(cidrs.len());
    for (key, text) in &cidrs {
        let net = cidr(text).ok_or_else(|| format!("{NAME}: invalid CIDR address: `{text}`"))?;
        parsed_cidrs.push((key, net));
    }
    let mut parsed_others = Vec::with_capacity(others.len());
    for (key, text) in &others {
        let net = if text.contains('/') {
            cidr(text)
        } else {
            address(text).map(|(v4, addr)| Net {
                v4,
                addr,
                prefix: if v4 { 32 } else { 128 },
            })
        }
        .ok_or_else(|| {
            format!("{NAME}: not a valid textual representation of an IP address or CIDR: `{text}`")
        })?;
        parsed_others.push((key, net));
    }
    let mut out = BTreeSet::new();
    for (k1, net) in &parsed_cidrs {
        for (k2, other) in &parsed_others {
            if net.contains(*other) {
                out.insert(Value::from(vec![(*k1).clone(), (*k2).clone()]));
            }
        }
    }
    Ok(Value::from(out))
}
