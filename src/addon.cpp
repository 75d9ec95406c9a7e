#include "ecu2mqtt/addon.hpp"

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

bool addon_names_broker(const nlohmann::json& options) {
    return options.contains("mqtt_url") && options["mqtt_url"].is_string() &&
           !options["mqtt_url"].get<std::string>().empty();
}

std::vector<std::string> addon_arguments(const nlohmann::json& options,
                                         const std::optional<SupervisorMqtt>& mqtt,
                                         const std::string& state_dir) {
    if (!options.is_object())
        throw AddonError("the add-on options must be a JSON object");
    std::vector<std::string> args{"--state-dir", state_dir};
    for (const auto& [key, value] : options.items()) {
        if (value.is_null())
            continue; // an optional option left empty
        if (key == "log_level") {
            args.insert(args.end(), {"--log-level", text_of(key, value)});
        } else if (key == "ecu_timeout") {
            args.insert(args.end(), {"--ecu-timeout", text_of(key, value)});
        } else if (key == "backfill") {
            if (!flag_of(key, value))
                args.push_back("--no-backfill");
        } else if (key == "discovery") {
            if (!flag_of(key, value))
                args.push_back("--no-discovery");
        } else if (key == "publish_raw") {
            if (flag_of(key, value))
                args.push_back("--publish-raw");
        } else if (key == "allow_peers" || key == "allow_ecus") {
            if (!value.is_array())
                throw AddonError("option \"" + key + "\" must be a list");
            if (!value.empty())
                args.insert(args.end(), {key == "allow_peers" ? "--allow-peers" : "--allow-ecus",
                                         joined(value)});
        } else if (key == "forward_to_ema") {
            if (!text_of(key, value).empty())
                args.insert(args.end(), {"--forward-to-ema", text_of(key, value)});
        } else if (key == "ema_resolver") {
            if (!text_of(key, value).empty())
                args.insert(args.end(), {"--ema-resolver", text_of(key, value)});
        } else if (key == "block_firmware") {
            if (flag_of(key, value))
                args.push_back("--block-firmware");
        } else if (key == "mqtt_url") {
            if (!text_of(key, value).empty())
                args.insert(args.end(), {"--mqtt-url", text_of(key, value)});
        } else if (key == "mqtt_user") {
            if (!text_of(key, value).empty())
                args.insert(args.end(), {"--mqtt-user", text_of(key, value)});
        } else if (key == "mqtt_password") {
            if (!text_of(key, value).empty())
                args.insert(args.end(), {"--mqtt-password", text_of(key, value)});
        } else {
            throw AddonError("unknown add-on option \"" + key + "\"");
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
