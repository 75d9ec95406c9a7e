// The payload of the retained `<base>/bridge/info`: the bridge's facts and what it tracks.
#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace ecu2mqtt {

// `facts` (see bridge_facts) with `ecus` (id and inverters tracked, by id), `ecu_count` and
// `inverter_count` added. The same input gives the same text, so a change is a new text.
std::string bridge_info_payload(const nlohmann::json& facts,
                                const std::map<std::string, std::size_t>& inverters_by_ecu);

} // namespace ecu2mqtt
