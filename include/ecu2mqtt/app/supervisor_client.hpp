// Asks the Home Assistant Supervisor for the MQTT service and the host's network addresses
// (plain HTTP on the add-on network).
#pragma once

#include "ecu2mqtt/app/addon.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace ecu2mqtt {

// GET <base_url>/services/mqtt with the bearer token; base_url is "http://HOST[:PORT]".
// Throws AddonError with what went wrong (unreachable, HTTP status, timeout, bad answer).
SupervisorMqtt fetch_supervisor_mqtt(const std::string& base_url, const std::string& token,
                                     std::chrono::milliseconds timeout);

// GET <base_url>/network/info: the addresses of the host's interfaces, where ECUs reach the
// add-on's published ports. Throws AddonError as above.
std::vector<std::string> fetch_supervisor_host_addresses(const std::string& base_url,
                                                         const std::string& token,
                                                         std::chrono::milliseconds timeout);

} // namespace ecu2mqtt
