// The one place that knows which inverter and ECU models exist: model codes, names, channel counts.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ecu2mqtt {

struct InverterFamily {
    std::string_view model_code; // first three digits of the inverter UID
    std::string_view name;       // marketing name of the family
    int channels;                // DC inputs reported per block
};

// Every model code known from the public implementations. Adding a model is one row here.
std::span<const InverterFamily> known_inverter_families();

std::optional<InverterFamily> find_inverter_family(std::string_view model_code);

// "YC600", "QS1", ... or "unknown model <code>" so an unknown code is still reported.
std::string inverter_model_name(std::string_view model_code);

// "ECU-R", "ECU-R Pro", "ECU-B", "ECU-C" or "unknown", from the ECU id prefix.
std::string_view ecu_model_name(std::string_view ecu_id);

} // namespace ecu2mqtt
