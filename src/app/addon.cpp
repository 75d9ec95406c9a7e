#include "ecu2mqtt/app/addon.hpp"

#include "ecu2mqtt/net/host_port.hpp"

#include <algorithm>

namespace ecu2mqtt {
namespace {

std::string joined(const nlohmann::json& list) {
    std::string out;
    for (const auto& item : list) {
        if (!item.is_string())
            throw AddonError("list items must be text, got " + item.dump());
        out += (out.empty() ? "" : ",") + item.get<std::string>();
    }
    return out;
}

std::string text_of(const std::string& key, const nlohmann::json& value) {
    if (value.is_string())
        return value.get<std::string>();
    if (value.is_number_integer())
        return std::to_string(value.get<long long>());
    throw AddonError("option \"" + key + "\" must be text or a number, got " + value.dump());
}

bool flag_of(const std::string& key, const nlohmann::json& value) {
    if (!value.is_boolean())
        throw AddonError("option \"" + key + "\" must be true or false, got " + value.dump());
    return value.get<bool>();
}

// Every add-on option (the keys of ha-addon/config.yaml) and the command-line flag it becomes.
struct AddonOption {
    enum class Kind { Text, FlagWhenTrue, FlagWhenFalse, List };
    std::string_view key;
    Kind kind;
    std::string_view flag;
};

constexpr AddonOption kAddonOptions[] = {
    {"log_level", AddonOption::Kind::Text, "--log-level"},
    {"ecu_timeout", AddonOption::Kind::Text, "--ecu-timeout"},
    {"backfill", AddonOption::Kind::FlagWhenFalse, "--no-backfill"},
    {"discovery", AddonOption::Kind::FlagWhenFalse, "--no-discovery"},
    {"publish_raw", AddonOption::Kind::FlagWhenTrue, "--publish-raw"},
    {"allow_peers", AddonOption::Kind::List, "--allow-peers"},
    {"allow_ecus", AddonOption::Kind::List, "--allow-ecus"},
    {"forward_to_ema", AddonOption::Kind::Text, "--forward-to-ema"},
    {"ema_resolver", AddonOption::Kind::Text, "--ema-resolver"},
    {"block_firmware", AddonOption::Kind::FlagWhenTrue, "--block-firmware"},
    {"mqtt_url", AddonOption::Kind::Text, "--mqtt-url"},
    {"mqtt_user", AddonOption::Kind::Text, "--mqtt-user"},
    {"mqtt_password", AddonOption::Kind::Text, "--mqtt-password"},
    {"advertised_address", AddonOption::Kind::List, "--advertised-address"},
    {"pvoutput_api_key", AddonOption::Kind::Text, "--pvoutput-api-key"},
    {"pvoutput_system_id", AddonOption::Kind::Text, "--pvoutput-system-id"},
    {"pvoutput_systems", AddonOption::Kind::Text, "--pvoutput-systems"},
    {"pvoutput_interval", AddonOption::Kind::Text, "--pvoutput-interval"},
    {"pvoutput_donor", AddonOption::Kind::FlagWhenTrue, "--pvoutput-donor"},
    {"poll_ecus", AddonOption::Kind::Text, "--poll-ecus"},
    {"poll_interval", AddonOption::Kind::Text, "--poll-interval"},
};

} // namespace

SupervisorMqtt parse_supervisor_mqtt(std::string_view body) {
    try {
        const auto j = nlohmann::json::parse(body);
        if (j.value("result", "") != "ok")
            throw AddonError("the Supervisor answered: " + j.value("message", j.dump()));
        const auto& data = j.at("data");
        SupervisorMqtt mqtt;
        mqtt.host = data.at("host").get<std::string>();
        const auto& port = data.at("port");
        mqtt.port = port.is_string() ? port.get<std::string>() : std::to_string(port.get<int>());
        mqtt.ssl = data.value("ssl", false);
        mqtt.username = data.value("username", "");
        mqtt.password = data.value("password", "");
        return mqtt;
    } catch (const nlohmann::json::exception& e) {
        throw AddonError(std::string("unexpected answer from the Supervisor: ") + e.what());
    }
}

namespace {
bool is_link_local(const std::string& canonical) {
    return canonical.starts_with("fe80:") || canonical.starts_with("169.254.");
}
} // namespace

std::vector<std::string> parse_supervisor_network(std::string_view body) {
    try {
        const auto j = nlohmann::json::parse(body);
        if (j.value("result", "") != "ok")
            throw AddonError("the Supervisor answered: " + j.value("message", j.dump()));
        std::vector<std::string> addresses;
        for (const auto& interface : j.at("data").at("interfaces")) {
            for (const auto* family : {"ipv4", "ipv6"}) {
                if (!interface.contains(family) || !interface[family].is_object())
                    continue;
                for (const auto& entry :
                     interface[family].value("address", nlohmann::json::array())) {
                    const auto text = entry.get<std::string>();
                    // "192.168.1.10/24"; one an ECU cannot use (link-local, with a scope id)
                    // is left out rather than stopping the add-on.
                    const auto address = canonical_unicast_address(text.substr(0, text.find('/')));
                    if (address && !is_link_local(*address) &&
                        std::find(addresses.begin(), addresses.end(), *address) == addresses.end())
                        addresses.push_back(*address);
                }
            }
        }
        return addresses;
    } catch (const nlohmann::json::exception& e) {
        throw AddonError(std::string("unexpected network answer from the Supervisor: ") + e.what());
    }
}

bool addon_names_advertised_address(const nlohmann::json& options) {
    return options.contains("advertised_address") && options["advertised_address"].is_array() &&
           !options["advertised_address"].empty();
}

bool addon_names_broker(const nlohmann::json& options) {
    return options.contains("mqtt_url") && options["mqtt_url"].is_string() &&
           !options["mqtt_url"].get<std::string>().empty();
}

std::vector<std::string> addon_arguments(const nlohmann::json& options,
                                         const std::optional<SupervisorMqtt>& mqtt,
                                         const std::string& state_dir) {
    if (!options.is_object())
        throw AddonError("the add-on options must be a JSON object");
    // The page opens in Home Assistant's sidebar through the Supervisor's ingress proxy (the
    // add-on's ingress_port), which is the only peer it answers.
    std::vector<std::string> args{"--state-dir",        state_dir,
                                  "--http-listen",      "0.0.0.0:8099",
                                  "--http-allow-peers", "172.30.32.2"};
    for (const auto& [key, value] : options.items()) {
        if (value.is_null())
            continue; // an optional option left empty
        const auto row = std::find_if(std::begin(kAddonOptions), std::end(kAddonOptions),
                                      [&](const AddonOption& o) { return o.key == key; });
        if (row == std::end(kAddonOptions))
            throw AddonError("unknown add-on option \"" + key + "\"");
        const std::string flag(row->flag);
        switch (row->kind) {
        case AddonOption::Kind::Text:
            if (const auto text = text_of(key, value); !text.empty())
                args.insert(args.end(), {flag, text});
            break;
        case AddonOption::Kind::FlagWhenTrue:
        case AddonOption::Kind::FlagWhenFalse:
            if (flag_of(key, value) == (row->kind == AddonOption::Kind::FlagWhenTrue))
                args.push_back(flag);
            break;
        case AddonOption::Kind::List:
            if (!value.is_array())
                throw AddonError("option \"" + key + "\" must be a list");
            if (!value.empty())
                args.insert(args.end(), {flag, joined(value)});
            break;
        }
    }
    if (!addon_names_broker(options) && mqtt) {
        args.insert(args.end(), {"--mqtt-url", std::string(mqtt->ssl ? "mqtts://" : "mqtt://") +
                                                   mqtt->host + ":" + mqtt->port});
        if (!mqtt->username.empty())
            args.insert(args.end(), {"--mqtt-user", mqtt->username});
        if (!mqtt->password.empty())
            args.insert(args.end(), {"--mqtt-password", mqtt->password});
    }
    return args;
}

} // namespace ecu2mqtt
