// What this bridge runs with, for the retained `<base>/bridge/info`: never a secret.
#pragma once

#include "ecu2mqtt/app/options.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace ecu2mqtt {

// "mqtt://user:secret@host:1883" -> "mqtt://host:1883".
std::string url_without_credentials(std::string_view url);

// Version, listen ports, the broker URL without credentials and the options in force under
// their JSON config keys. The broker user and password are left out, whatever they are.
// `http_port` is the status page's port as bound (the option may say 0).
nlohmann::json bridge_facts(const Options& options, std::string_view version,
                            std::optional<std::uint16_t> http_port);

} // namespace ecu2mqtt
