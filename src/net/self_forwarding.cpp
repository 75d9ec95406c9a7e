#include "ecu2mqtt/net/self_forwarding.hpp"

#include <algorithm>
#include <future>
#include <ifaddrs.h>
#include <memory>
#include <netdb.h>
#include <netinet/in.h>
#include <thread>

namespace ecu2mqtt {

namespace asio = boost::asio;

namespace {

std::optional<asio::ip::address> address_of(const sockaddr* sa) {
    if (!sa)
        return std::nullopt;
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        return asio::ip::address_v4(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        asio::ip::address_v6::bytes_type bytes{};
        std::copy(std::begin(in6->sin6_addr.s6_addr), std::end(in6->sin6_addr.s6_addr),
                  bytes.begin());
        return asio::ip::address_v6(bytes);
    }
    return std::nullopt;
}

std::vector<asio::ip::address> interface_addresses() {
    std::vector<asio::ip::address> found;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0)
        return found;
    const std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> owner(list, &::freeifaddrs);
    for (const ifaddrs* entry = list; entry; entry = entry->ifa_next)
        if (const auto address = address_of(entry->ifa_addr))
            found.push_back(*address);
    return found;
}

std::vector<asio::ip::address> system_lookup(const std::string& host) {
    std::vector<asio::ip::address> found;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &list) != 0)
        return found;
    const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(list, &::freeaddrinfo);
    for (const addrinfo* entry = list; entry; entry = entry->ai_next)
        if (const auto address = address_of(entry->ai_addr))
            found.push_back(*address);
    return found;
}

asio::ip::address unmapped(const asio::ip::address& address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
    return address;
}

} // namespace

bool is_own_address(const asio::ip::address& given) {
    const auto address = unmapped(given);
    if (address.is_loopback() || address.is_unspecified())
        return true;
    const auto own = interface_addresses();
    return std::find(own.begin(), own.end(), address) != own.end();
}

bool reaches_listener(const asio::ip::address& given, const std::string& listen_address) {
    boost::system::error_code ec;
    const auto listening = asio::ip::make_address(listen_address, ec);
    if (listen_address.empty() || ec || listening.is_unspecified())
        return is_own_address(given);
    auto address = unmapped(given);
    if (address.is_unspecified()) // connecting to 0.0.0.0 or :: reaches loopback
        address = address.is_v4() ? asio::ip::address(asio::ip::address_v4::loopback())
                                  : asio::ip::address(asio::ip::address_v6::loopback());
    return address == unmapped(listening);
}

std::optional<std::vector<asio::ip::address>> resolve_within(const std::string& host,
                                                             std::chrono::milliseconds timeout) {
    // getaddrinfo cannot be interrupted: the thread owns its share of the result and may finish
    // after this function has given up and returned.
    auto result = std::make_shared<std::promise<std::vector<asio::ip::address>>>();
    auto answer = result->get_future();
    std::thread([result, host] { result->set_value(system_lookup(host)); }).detach();
    if (answer.wait_for(timeout) != std::future_status::ready)
        return std::nullopt;
    return answer.get();
}

SelfForwardingCheck check_self_forwarding(const ForwarderConfig& target,
                                          const std::vector<std::uint16_t>& listen_ports,
                                          const std::string& listen_address) {
    SelfForwardingCheck check;
    boost::system::error_code ec;
    const auto literal = asio::ip::make_address(target.host, ec);
    if (!ec) {
        const bool our_port = !target.port || std::find(listen_ports.begin(), listen_ports.end(),
                                                        *target.port) != listen_ports.end();
        if (reaches_listener(literal, listen_address) && our_port)
            check.refusal = "\"" + target.host + "\" is an address ecu2mqtt listens on (--listen " +
                            listen_address +
                            ") and the port is one of its ports: every message would come back "
                            "to ecu2mqtt";
        return check;
    }
    if (!target.resolver.empty())
        return check; // resolved elsewhere, as intended
    const auto found = resolve_within(target.host, target.timeout);
    if (!found) {
        check.unchecked =
            "the system resolver did not answer for \"" + target.host + "\" within the EMA timeout";
        return check;
    }
    for (const auto& address : *found)
        if (reaches_listener(address, listen_address)) {
            check.refusal = "\"" + target.host + "\" resolves to " + address.to_string() +
                            ", an address of this host (the local DNS points it at ecu2mqtt): "
                            "every message would come back to ecu2mqtt. Give --ema-resolver "
                            "(e.g. 1.1.1.1) or EMA's address";
            return check;
        }
    return check;
}

} // namespace ecu2mqtt
