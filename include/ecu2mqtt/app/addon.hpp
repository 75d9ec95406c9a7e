// Home Assistant add-on start-up: the add-on's options and the Supervisor's MQTT service become
// ordinary command-line arguments. Pure; the HTTP call lives in supervisor_client.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

// What `GET http://supervisor/services/mqtt` answers (`port` arrives as a string).
struct SupervisorMqtt {
    std::string host;
    std::string port;
    bool ssl = false;
    std::string username;
    std::string password;
};

class AddonError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Parses the Supervisor's answer, `{"result": "ok", "data": {...}}`. Throws AddonError.
SupervisorMqtt parse_supervisor_mqtt(std::string_view body);

// The host's interface addresses (without prefix length or link-local ones) from the
// Supervisor's `/network/info` answer. Throws AddonError.
std::vector<std::string> parse_supervisor_network(std::string_view body);

// True when the add-on options name the address ECUs reach it at (then the Supervisor is not
// asked for the host's addresses).
bool addon_names_advertised_address(const nlohmann::json& options);

// True when the add-on options name a broker themselves (then the Supervisor is not asked).
bool addon_names_broker(const nlohmann::json& options);

// The command-line arguments for the add-on's options (keys as in ha-addon/config.yaml) and,
// unless the options name a broker, the Supervisor's MQTT service. Throws AddonError for an
// unknown key or a value of the wrong type.
std::vector<std::string> addon_arguments(const nlohmann::json& options,
                                         const std::optional<SupervisorMqtt>& mqtt,
                                         const std::string& state_dir);

} // namespace ecu2mqtt
