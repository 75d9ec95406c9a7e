#include "ecu2mqtt/mqtt/superseded_readings.hpp"

#include <nlohmann/json.hpp>
#include <optional>

namespace ecu2mqtt {
namespace {

struct StateTopic {
    std::string ecu;
    std::string uid; // empty: the ECU's own state
};

// "<base>/<ecu>/state" or "<base>/<ecu>/<uid>/state".
std::optional<StateTopic> parse_state_topic(const TopicScheme& topics, const std::string& topic) {
    const std::string head = topics.base + "/";
    const std::string tail = "/state";
    if (!topic.starts_with(head) || !topic.ends_with(tail) ||
        topic.size() <= head.size() + tail.size())
        return std::nullopt;
    const auto middle = topic.substr(head.size(), topic.size() - head.size() - tail.size());
    const auto slash = middle.find('/');
    if (slash == std::string::npos)
        return StateTopic{middle, {}};
    if (middle.find('/', slash + 1) != std::string::npos)
        return std::nullopt;
    return StateTopic{middle.substr(0, slash), middle.substr(slash + 1)};
}

} // namespace

std::vector<OutgoingMessage> history_of_superseded(const TopicScheme& topics,
                                                   const std::vector<OutgoingMessage>& superseded) {
    std::optional<std::string> ecu;
    nlohmann::json history = nlohmann::json::object();
    auto inverters = nlohmann::json::object();
    for (const auto& message : superseded) {
        const auto state = parse_state_topic(topics, message.topic);
        if (!state || message.payload.empty())
            continue;
        auto payload = nlohmann::json::parse(message.payload, nullptr, false);
        if (payload.is_discarded() || !payload.is_object())
            continue;
        ecu = state->ecu;
        if (state->uid.empty()) {
            payload.erase("today_energy_kwh"); // today's total is the live state's, not history's
            for (auto& [key, value] : payload.items())
                history[key] = std::move(value);
        } else {
            inverters[state->uid] = std::move(payload);
        }
    }
    if (!ecu)
        return {};
    if (!history.contains("timestamp") && !inverters.empty()) // only inverter states were old
        history["timestamp"] = inverters.begin()->value("timestamp", nlohmann::json());
    history["inverters"] = std::move(inverters);
    return {{topics.history(*ecu), history.dump(), false}};
}

} // namespace ecu2mqtt
