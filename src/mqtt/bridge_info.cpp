#include "ecu2mqtt/mqtt/bridge_info.hpp"

namespace ecu2mqtt {

std::string bridge_info_payload(const nlohmann::json& facts,
                                const std::map<std::string, std::size_t>& inverters_by_ecu) {
    nlohmann::json info = facts.is_object() ? facts : nlohmann::json::object();
    nlohmann::json ecus = nlohmann::json::array();
    std::size_t inverters = 0;
    for (const auto& [id, count] : inverters_by_ecu) {
        ecus.push_back({{"id", id}, {"inverters", count}});
        inverters += count;
    }
    info["ecus"] = ecus;
    info["ecu_count"] = inverters_by_ecu.size();
    info["inverter_count"] = inverters;
    return info.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace ecu2mqtt
