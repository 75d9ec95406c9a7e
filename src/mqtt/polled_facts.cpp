#include "ecu2mqtt/mqtt/polled_facts.hpp"

namespace ecu2mqtt {
namespace {

std::vector<std::string> voltage_keys(std::size_t phases) {
    if (phases == 1)
        return {"ac_voltage_v"};
    std::vector<std::string> keys;
    for (std::size_t phase = 1; phase <= phases; ++phase)
        keys.push_back("ac_voltage_l" + std::to_string(phase) + "_v");
    return keys;
}

nlohmann::json diagnostic_sensor(const std::string& node, const std::string& object,
                                 const std::string& name, const std::string& state_key) {
    const std::string unique_id = node + "_" + object;
    return {{"p", "sensor"},
            {"name", name},
            {"unique_id", unique_id},
            {"default_entity_id", "sensor." + unique_id},
            {"value_template", "{{ value_json." + state_key + " }}"},
            {"entity_category", "diagnostic"}};
}

} // namespace

void add_polled_ecu_keys(nlohmann::json& ecu_state, const PolledEcuFacts& facts) {
    if (facts.firmware)
        ecu_state["firmware"] = *facts.firmware;
    if (facts.time_zone)
        ecu_state["time_zone"] = *facts.time_zone;
    if (facts.inverters_registered)
        ecu_state["inverters_registered"] = *facts.inverters_registered;
}

void append_polled_inverter_keys(std::string& inverter_state, const PolledInverterFacts& facts,
                                 std::int64_t fresh_since_unix) {
    if (inverter_state.empty() || inverter_state.back() != '}')
        return;
    std::string keys;
    const auto add = [&keys](const std::string& key, const nlohmann::json& value) {
        keys += ",\"" + key + "\":" + value.dump();
    };
    if (facts.signal_level)
        add("signal_level", facts.signal_level_at >= fresh_since_unix
                                ? nlohmann::json(*facts.signal_level)
                                : nlohmann::json(nullptr));
    const bool voltage_fresh = facts.ac_voltage_at >= fresh_since_unix;
    const auto names = voltage_keys(facts.ac_voltage_v.size());
    for (std::size_t phase = 0; phase < facts.ac_voltage_v.size(); ++phase)
        add(names[phase], voltage_fresh && facts.ac_voltage_v[phase]
                              ? nlohmann::json(*facts.ac_voltage_v[phase])
                              : nlohmann::json(nullptr));
    if (inverter_state.size() == 2 && !keys.empty()) // `{}`
        keys.erase(0, 1);
    inverter_state.insert(inverter_state.size() - 1, keys);
}

nlohmann::json polled_facts_record(const PolledEcuFacts& facts) {
    nlohmann::json record = nlohmann::json::object();
    add_polled_ecu_keys(record, facts);
    auto& inverters = record["inverters"] = nlohmann::json::object();
    for (const auto& [uid, inverter] : facts.inverters) {
        nlohmann::json voltages = nlohmann::json::array();
        for (const auto& phase : inverter.ac_voltage_v)
            voltages.push_back(phase ? nlohmann::json(*phase) : nlohmann::json(nullptr));
        inverters[uid] = {{"signal_level", inverter.signal_level
                                               ? nlohmann::json(*inverter.signal_level)
                                               : nlohmann::json(nullptr)},
                          {"signal_level_at", inverter.signal_level_at},
                          {"ac_voltage_v", std::move(voltages)},
                          {"ac_voltage_at", inverter.ac_voltage_at}};
    }
    return record;
}

PolledEcuFacts polled_facts_from_record(const nlohmann::json& record) try {
    PolledEcuFacts facts;
    if (record.contains("firmware"))
        facts.firmware = record.at("firmware").get<std::string>();
    if (record.contains("time_zone"))
        facts.time_zone = record.at("time_zone").get<std::string>();
    if (record.contains("inverters_registered"))
        facts.inverters_registered = record.at("inverters_registered").get<int>();
    for (const auto& [uid, stored] : record.at("inverters").items()) {
        auto& inverter = facts.inverters[uid];
        if (const auto& level = stored.at("signal_level"); !level.is_null())
            inverter.signal_level = level.get<int>();
        inverter.signal_level_at = stored.at("signal_level_at").get<std::int64_t>();
        for (const auto& phase : stored.at("ac_voltage_v"))
            inverter.ac_voltage_v.push_back(phase.is_null() ? std::nullopt
                                                            : std::optional(phase.get<double>()));
        inverter.ac_voltage_at = stored.at("ac_voltage_at").get<std::int64_t>();
    }
    return facts;
} catch (const nlohmann::json::exception&) {
    return {};
}

void add_polled_ecu_discovery(DeviceDiscovery& ecu_config, const PolledEcuFacts& facts) {
    auto& payload = ecu_config.payload;
    const auto node = payload["device"]["identifiers"][0].get<std::string>();
    auto& cmps = payload["cmps"];
    if (facts.firmware) {
        payload["device"]["sw_version"] = *facts.firmware;
        cmps["firmware"] = diagnostic_sensor(node, "firmware", "Firmware", "firmware");
    }
    if (facts.time_zone)
        cmps["time_zone"] = diagnostic_sensor(node, "time_zone", "Time zone", "time_zone");
    if (facts.inverters_registered) {
        auto sensor = diagnostic_sensor(node, "inverters_registered", "Inverters registered",
                                        "inverters_registered");
        sensor["state_class"] = "measurement";
        cmps["inverters_registered"] = std::move(sensor);
    }
}

void add_polled_inverter_discovery(DeviceDiscovery& inverter_config, const std::string& uid,
                                   const PolledInverterFacts& facts) {
    auto& cmps = inverter_config.payload["cmps"];
    const auto node = discovery_node_id(uid);
    if (facts.signal_level) {
        auto sensor = diagnostic_sensor(node, "signal_level", "Signal level", "signal_level");
        sensor["state_class"] = "measurement";
        cmps["signal_level"] = std::move(sensor);
    }
    const auto names = voltage_keys(facts.ac_voltage_v.size());
    for (std::size_t phase = 0; phase < names.size(); ++phase) {
        const std::string object = names[phase].substr(0, names[phase].size() - 2);
        const std::string label =
            names.size() == 1 ? "Grid voltage" : "Grid voltage L" + std::to_string(phase + 1);
        auto sensor = diagnostic_sensor(node, object, label, names[phase]);
        sensor["device_class"] = "voltage";
        sensor["state_class"] = "measurement";
        sensor["unit_of_measurement"] = "V";
        sensor["suggested_display_precision"] = 0;
        cmps[object] = std::move(sensor);
    }
}

} // namespace ecu2mqtt
