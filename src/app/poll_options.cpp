#include "ecu2mqtt/app/poll_options.hpp"

#include "ecu2mqtt/app/options.hpp"
#include "ecu2mqtt/net/ecu_poller.hpp"

#include <stdexcept>

namespace ecu2mqtt {

std::string parse_poll_ecus_option(const std::string& text) {
    try {
        const auto config = parse_poll_ecus(text);
        if (!config.from_uploads && config.targets.empty())
            return "";
    } catch (const std::invalid_argument& e) {
        throw OptionError("expected auto or ADDR[:PORT],... with the ECUs' LAN addresses, got \"" +
                          text + "\": " + e.what());
    }
    return text;
}

} // namespace ecu2mqtt
