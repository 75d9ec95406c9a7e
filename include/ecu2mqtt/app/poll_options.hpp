// Reads the options of local polling (--poll-ecus and friends), kept apart from options.cpp.
#pragma once

#include <string>

namespace ecu2mqtt {

// "auto", or "ADDR[:PORT],…" with IP addresses, as given; "" or "off" for off. Throws
// OptionError saying what is wrong.
std::string parse_poll_ecus_option(const std::string& text);

} // namespace ecu2mqtt
