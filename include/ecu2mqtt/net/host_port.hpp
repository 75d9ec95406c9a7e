// Reads the network addresses users type into options: "HOST[:PORT]", IP literals, DNS names
// and CIDR ranges, refusing anything that would only fail later, at the first connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ecu2mqtt {

struct HostPort {
    std::string host; // an IP literal (IPv6 without brackets) or a DNS name without trailing dot
    std::optional<std::uint16_t> port;
};

// "HOST", "HOST:PORT", "[IPv6]:PORT" or a bare IPv6 address. The port is 1-65535. A DNS name may
// end in one dot (the fully qualified form); it is removed. Throws std::invalid_argument saying
// what is wrong.
HostPort parse_host_port(std::string_view text);

// The text parse_host_port reads back to the same value (IPv6 hosts in brackets when a port
// follows).
std::string host_port_text(const HostPort& value);

bool is_ip_literal(std::string_view text);

// The address as the resolver writes it (lower case, IPv6 shortened, an IPv4-mapped IPv6
// address as IPv4), so that spellings of one address compare equal; nullopt when `text` is no
// address a host can be reached at (not an address, unspecified, multicast, with a scope id).
std::optional<std::string> canonical_unicast_address(std::string_view text);

// Letters, digits and hyphens in dot-separated labels of 1-63 characters, 253 at most, the last
// label not all digits (that would be a mistyped IPv4 address).
bool is_dns_name(std::string_view text);

// "ADDRESS" or "ADDRESS/PREFIX" with the prefix in range for the address family. Throws
// std::invalid_argument saying what is wrong.
void check_cidr(std::string_view text);

} // namespace ecu2mqtt
