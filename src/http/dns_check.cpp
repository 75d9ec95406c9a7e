#include "ecu2mqtt/http/dns_check.hpp"

#include "ecu2mqtt/net/asio.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <ifaddrs.h>
#include <netinet/in.h>

namespace ecu2mqtt {
namespace asio = boost::asio;

namespace {

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items)
        out += (out.empty() ? "" : ", ") + item;
    return out;
}

bool is_wildcard(const std::string& address) {
    return address.empty() || address == "0.0.0.0" || address == "::";
}

bool is_loopback(const std::string& address) {
    return address.starts_with("127.") || address == "::1";
}

} // namespace

DnsCheckSnapshot judge_dns(const DnsCheckInput& in) {
    DnsCheckSnapshot check;
    check.name = in.name;
    check.checked = true;
    check.addresses = in.resolved;
    check.host_addresses = in.host_addresses;
    // Listening everywhere, a name resolving to loopback would still not reach us from an ECU.
    std::vector<std::string> ours{in.listen_address};
    if (is_wildcard(in.listen_address)) {
        ours.clear();
        std::copy_if(in.host_addresses.begin(), in.host_addresses.end(), std::back_inserter(ours),
                     [](const std::string& a) { return !is_loopback(a); });
    }
    // Told where ECUs reach us (a container's published ports), those addresses count as ours
    // and are the ones the fix names.
    if (!in.advertised_addresses.empty())
        ours.insert(ours.begin(), in.advertised_addresses.begin(), in.advertised_addresses.end());
    const auto here = std::find_if(in.resolved.begin(), in.resolved.end(), [&](const auto& a) {
        return std::find(ours.begin(), ours.end(), a) != ours.end();
    });
    const bool host_unknown = in.in_container && in.advertised_addresses.empty();
    const auto& shown = in.advertised_addresses.empty() ? ours : in.advertised_addresses;
    const std::string fix = "Fix: in your router's (or DNS server's) local DNS, point " + in.name +
                            " at this host (" +
                            (shown.empty() || host_unknown ? "its LAN address" : joined(shown)) +
                            "), then restart the ECU.";
    if (here != in.resolved.end()) {
        check.verdict = "ok";
        check.points_here = true;
        check.message = in.name + " resolves to " + *here +
                        ", this host: ECUs using the same DNS server reach this service.";
    } else if (host_unknown && !in.resolved.empty()) {
        check.verdict = "unknown";
        check.message = in.name + " resolves to " + joined(in.resolved) +
                        ". Cannot tell from inside a container whether that is the host running "
                        "it: if it is, all is well. Give the host's LAN address with "
                        "--advertised-address (in the app: Home Assistant's address) to check "
                        "it.";
    } else if (in.resolved.empty()) {
        check.verdict = "wrong";
        check.message = in.name + " does not resolve from here (" +
                        (in.resolve_error.empty() ? "no address" : in.resolve_error) + "). " + fix;
    } else {
        check.verdict = "wrong";
        check.message = in.name + " resolves to " + joined(in.resolved) +
                        ", not to this host: the ECU uploads elsewhere. " + fix;
    }
    return check;
}

DnsCheckSnapshot judge_dns(const std::string& name, const std::vector<std::string>& resolved,
                           const std::string& resolve_error,
                           const std::vector<std::string>& host_addresses,
                           const std::string& listen_address) {
    return judge_dns(
        DnsCheckInput{name, resolved, resolve_error, host_addresses, listen_address, {}, false});
}

bool running_in_container() {
    std::error_code ignored;
    if (std::filesystem::exists("/.dockerenv", ignored) ||
        std::filesystem::exists("/run/.containerenv", ignored) || std::getenv("SUPERVISOR_TOKEN"))
        return true;
    const char* container = std::getenv("container"); // set by Podman and systemd-nspawn
    return container && *container;
}

std::vector<std::string> host_addresses() {
    std::vector<std::string> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0)
        return out;
    for (const ifaddrs* entry = list; entry; entry = entry->ifa_next) {
        if (!entry->ifa_addr)
            continue;
        asio::ip::address address;
        if (entry->ifa_addr->sa_family == AF_INET) {
            const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
            address = asio::ip::address_v4(ntohl(in->sin_addr.s_addr));
        } else if (entry->ifa_addr->sa_family == AF_INET6) {
            const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
            asio::ip::address_v6::bytes_type bytes;
            std::copy(std::begin(in6->sin6_addr.s6_addr), std::end(in6->sin6_addr.s6_addr),
                      bytes.begin());
            address = asio::ip::address_v6(bytes, in6->sin6_scope_id);
        } else {
            continue;
        }
        if (auto text = address.to_string(); std::find(out.begin(), out.end(), text) == out.end())
            out.push_back(std::move(text));
    }
    ::freeifaddrs(list);
    return out;
}

struct DnsSelfCheck::Impl : std::enable_shared_from_this<DnsSelfCheck::Impl> {
    Impl(asio::any_io_executor executor, DnsCheckConfig c, std::function<void(DnsCheckSnapshot)> f)
        : resolver(executor), timer(executor), config(std::move(c)), on_result(std::move(f)) {}

    void refresh() {
        const auto now = std::chrono::steady_clock::now();
        if (running || (checked_once && now - last_checked < config.cache_for))
            return;
        running = true;
        timer.expires_after(config.timeout);
        timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
            if (!ec)
                self->resolver.cancel(); // the lookup then ends with operation_aborted
        });
        resolver.async_resolve(
            config.name, "",
            [self = shared_from_this()](boost::system::error_code ec,
                                        asio::ip::tcp::resolver::results_type results) {
                self->finish(ec, results);
            });
    }

    void finish(boost::system::error_code ec,
                const asio::ip::tcp::resolver::results_type& results) {
        timer.cancel();
        running = false;
        checked_once = true;
        last_checked = std::chrono::steady_clock::now();
        std::vector<std::string> resolved;
        if (!ec)
            for (const auto& entry : results)
                if (auto text = entry.endpoint().address().to_string();
                    std::find(resolved.begin(), resolved.end(), text) == resolved.end())
                    resolved.push_back(std::move(text));
        const std::string error =
            ec == asio::error::operation_aborted
                ? "no answer within " + std::to_string(config.timeout.count()) + " ms"
                : (ec ? ec.message() : "");
        if (on_result)
            on_result(judge_dns(DnsCheckInput{config.name, resolved, error, host_addresses(),
                                              config.listen_address, config.advertised_addresses,
                                              config.in_container}));
    }

    asio::ip::tcp::resolver resolver;
    asio::steady_timer timer;
    DnsCheckConfig config;
    std::function<void(DnsCheckSnapshot)> on_result;
    bool running = false;
    bool checked_once = false;
    std::chrono::steady_clock::time_point last_checked;
};

DnsSelfCheck::DnsSelfCheck(asio::any_io_executor executor, DnsCheckConfig config,
                           std::function<void(DnsCheckSnapshot)> on_result)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(config), std::move(on_result))) {}

DnsSelfCheck::~DnsSelfCheck() {
    // Pending handlers keep Impl alive; they must not call back into an owner that is gone.
    impl_->on_result = nullptr;
    impl_->timer.cancel();
    impl_->resolver.cancel();
}

void DnsSelfCheck::refresh() {
    impl_->refresh();
}

} // namespace ecu2mqtt
