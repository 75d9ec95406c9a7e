#include "ecu2mqtt/protocol/inverter_models.hpp"

#include <algorithm>
#include <array>

namespace ecu2mqtt {
namespace {

// Source: the public Python proxies for the ECU-R (see docs/protocol.md). Channel counts agree
// with the block sizes of the real capture for 408 (2 channels) and 806 (4 channels).
constexpr std::array kFamilies{
    InverterFamily{"403", "YC500", 2},  InverterFamily{"404", "YC500", 2},
    InverterFamily{"406", "YC600", 2},  InverterFamily{"407", "YC600", 2},
    InverterFamily{"408", "YC600", 2},  InverterFamily{"409", "YC600", 2},
    InverterFamily{"703", "DS3", 2},    InverterFamily{"706", "DS3", 2},
    InverterFamily{"801", "QS1", 4},    InverterFamily{"802", "QS1", 4},
    InverterFamily{"805", "QS1", 4},    InverterFamily{"806", "QS1", 4},
    InverterFamily{"501", "YC1000", 4}, InverterFamily{"502", "YC1000", 4},
    InverterFamily{"503", "YC1000", 4}, InverterFamily{"504", "YC1000", 4},
};

constexpr std::size_t kModelCodeSize = 3;
static_assert(std::all_of(kFamilies.begin(), kFamilies.end(), [](const InverterFamily& family) {
    return family.model_code.size() == kModelCodeSize;
}));

struct EcuPrefix {
    std::string_view prefix;
    std::string_view name;
};

// Longest prefixes first: 2160/2162/2163 must win over a shorter match.
constexpr std::array kEcuPrefixes{
    EcuPrefix{"2160", "ECU-R"},
    EcuPrefix{"2162", "ECU-R Pro"},
    EcuPrefix{"2163", "ECU-B"},
    EcuPrefix{"215", "ECU-C"},
};

} // namespace

std::span<const InverterFamily> known_inverter_families() {
    return kFamilies;
}

std::optional<InverterFamily> find_inverter_family(std::string_view model_code) {
    // Compared character by character: every code has three, and this runs for every block.
    if (model_code.size() != kModelCodeSize)
        return std::nullopt;
    for (const auto& family : kFamilies)
        if (family.model_code[0] == model_code[0] && family.model_code[1] == model_code[1] &&
            family.model_code[2] == model_code[2])
            return family;
    return std::nullopt;
}

std::string inverter_model_name(std::string_view model_code) {
    if (const auto family = find_inverter_family(model_code))
        return std::string(family->name);
    return "unknown model " + std::string(model_code);
}

std::string_view ecu_model_name(std::string_view ecu_id) {
    for (const auto& entry : kEcuPrefixes)
        if (ecu_id.starts_with(entry.prefix))
            return entry.name;
    return "unknown";
}

} // namespace ecu2mqtt
