#include "ecu2mqtt/net/ecu_poller.hpp"
#include "ecu2mqtt/net/host_port.hpp"

#include <algorithm>
#include <stdexcept>

namespace ecu2mqtt {

PollerConfig parse_poll_ecus(const std::string& text) {
    PollerConfig config;
    if (text.empty() || text == "off")
        return config;
    if (text == "auto") {
        config.from_uploads = true;
        return config;
    }
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto comma = std::min(text.find(',', start), text.size());
        auto item = text.substr(start, comma - start);
        // Items are trimmed, as in every other list option ("a, b").
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        const auto parsed = parse_host_port(item); // throws std::invalid_argument
        if (!is_ip_literal(parsed.host))
            throw std::invalid_argument("'" + item + "' is not an IP address: give the ECU's " +
                                        "LAN address, or auto");
        const auto address = canonical_unicast_address(parsed.host);
        if (!address)
            throw std::invalid_argument("'" + item + "' is no address of one ECU (unspecified, " +
                                        "multicast or with a scope)");
        const PollTarget target{*address, parsed.port.value_or(kLocalApiPort)};
        for (const auto& known : config.targets)
            if (known.host == target.host && known.port == target.port)
                throw std::invalid_argument("'" + item + "' is given twice");
        config.targets.push_back(target);
        start = comma + 1;
    }
    return config;
}

} // namespace ecu2mqtt
