#include "ecu2mqtt/net/host_port.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace ecu2mqtt {
namespace {

bool is_ipv4(const std::string& text) {
    in_addr out{};
    return ::inet_pton(AF_INET, text.c_str(), &out) == 1;
}

bool is_ipv6(const std::string& text) {
    in6_addr out{};
    return ::inet_pton(AF_INET6, text.c_str(), &out) == 1;
}

std::uint16_t parse_port(std::string_view text, std::string_view whole) {
    unsigned value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty())
        throw std::invalid_argument("no port after ':' in \"" + std::string(whole) + "\"");
    if (ec != std::errc{} || ptr != end || value < 1 || value > 65535)
        throw std::invalid_argument("port \"" + std::string(text) + "\" in \"" +
                                    std::string(whole) + "\" is not from 1 to 65535");
    return static_cast<std::uint16_t>(value);
}

std::string checked_host(std::string host, std::string_view whole) {
    if (host.empty())
        throw std::invalid_argument("no host in \"" + std::string(whole) + "\"");
    if (is_ip_literal(host))
        return host;
    if (host.size() > 1 && host.back() == '.')
        host.pop_back(); // the fully qualified form names the same host
    if (!is_dns_name(host))
        throw std::invalid_argument("\"" + std::string(whole) +
                                    "\" is neither an IP address nor a valid host name");
    return host;
}

} // namespace

std::optional<std::string> canonical_unicast_address(std::string_view text) {
    if (text.find('%') != std::string_view::npos)
        return std::nullopt; // a scope id names a link of this host, not an address to reach
    boost::system::error_code ec;
    auto address = boost::asio::ip::make_address(std::string(text), ec);
    if (ec || address.is_unspecified() || address.is_multicast())
        return std::nullopt;
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
    return address.to_string();
}

bool is_ip_literal(std::string_view text) {
    const std::string copy(text);
    return is_ipv4(copy) || is_ipv6(copy);
}

bool is_dns_name(std::string_view text) {
    if (text.empty() || text.size() > 253)
        return false;
    std::size_t start = 0;
    std::string_view last;
    while (start <= text.size()) {
        const auto dot = std::min(text.find('.', start), text.size());
        const auto label = text.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        if (!std::all_of(label.begin(), label.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
            }))
            return false;
        last = label;
        start = dot + 1;
    }
    return !std::all_of(last.begin(), last.end(),
                        [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

HostPort parse_host_port(std::string_view text) {
    if (text.empty())
        throw std::invalid_argument("expected HOST[:PORT], got an empty value");
    HostPort result;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || !is_ipv6(std::string(text.substr(1, close - 1))))
            throw std::invalid_argument("\"" + std::string(text) +
                                        "\" is not [IPv6 address] or [IPv6 address]:PORT");
        result.host = std::string(text.substr(1, close - 1));
        const auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':')
                throw std::invalid_argument("unexpected \"" + std::string(rest) + "\" after \"" +
                                            std::string(text.substr(0, close + 1)) + "\"");
            result.port = parse_port(rest.substr(1), text);
        }
        return result;
    }
    const auto colon = text.find(':');
    if (colon != std::string_view::npos && text.find(':', colon + 1) != std::string_view::npos) {
        if (!is_ipv6(std::string(text)))
            throw std::invalid_argument("\"" + std::string(text) +
                                        "\" is not HOST[:PORT] (an IPv6 address with a port "
                                        "goes in brackets: [::1]:53)");
        result.host = std::string(text);
        return result;
    }
    result.host = checked_host(std::string(text.substr(0, colon)), text);
    if (colon != std::string_view::npos)
        result.port = parse_port(text.substr(colon + 1), text);
    return result;
}

std::string host_port_text(const HostPort& value) {
    if (!value.port)
        return value.host;
    const bool v6 = value.host.find(':') != std::string::npos;
    return (v6 ? "[" + value.host + "]" : value.host) + ":" + std::to_string(*value.port);
}

void check_cidr(std::string_view text) {
    const auto slash = text.find('/');
    const std::string address(text.substr(0, slash));
    const bool v4 = is_ipv4(address);
    if (!v4 && !is_ipv6(address))
        throw std::invalid_argument("\"" + std::string(text) +
                                    "\" is not an IP address or CIDR range");
    if (slash == std::string_view::npos)
        return;
    const auto bits_text = text.substr(slash + 1);
    const unsigned max_bits = v4 ? 32 : 128;
    unsigned bits = 0;
    const auto* end = bits_text.data() + bits_text.size();
    const auto [ptr, ec] = std::from_chars(bits_text.data(), end, bits);
    if (bits_text.empty() || ec != std::errc{} || ptr != end || bits > max_bits)
        throw std::invalid_argument("prefix length in \"" + std::string(text) +
                                    "\" is not from 0 to " + std::to_string(max_bits));
}

} // namespace ecu2mqtt
